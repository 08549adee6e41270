"""`GroupEpochs(prompt_width=...)`: the offline methods and DPO compute each group's prompt once per step. The
reference is the same step on whole rows (the path without a prompt width): the same loss and, after one plain SGD
step, the same parameters within float tolerance, on a stored set of real arith problems (BCPG-NSA, its step labels
per token) and on DPO pairs in both of their layouts."""

import importlib
import json

import jax
import numpy as np
import optax
import pytest
from rl_helpers import STORED_PROMPT, G, one_layer_start, stored_set, wrong_last_step

from nsa_jax import models, parallel, rollouts, tasks
from nsa_jax.rollouts import Batch
from nsa_jax.train.core import Engine, GroupEpochs, shared_prompt_width, split_model
from nsa_jax.train.preference.dpo import dpo_loss_fn, pairs_from_jsonl, pairs_from_offline
from nsa_jax.train.rl.loss import make_policy_loss_fn


@pytest.fixture(scope="module")
def start_dir(tmp_path_factory) -> str:
    return one_layer_start(tmp_path_factory.mktemp("m"))


def nsa_batch(tokenizer) -> Batch:
    """The stored set as the offline trainer feeds BCPG-NSA: `logp_old`, per-token `step_ids` (a step every 5
    response tokens), per-row `step_correct`."""
    batch = stored_set(tokenizer).batch
    loss = batch.tokens["loss_mask"]
    step_ids = np.where(loss > 0, (np.cumsum(loss, axis=1) - 1) // 5, -1).astype(np.int32)
    correct = np.random.default_rng(3).random((len(batch), int(step_ids.max()) + 1)) < 0.5
    tokens = {**{k: v for k, v in batch.tokens.items() if k != "logp_b"}, "logp_old": batch.tokens["logp_b"]}
    return Batch({**tokens, "step_ids": step_ids}, {**batch.rows, "step_correct": correct}, G)


def dpo_pairs(tokenizer, layout: str, tmp_path) -> Batch:
    task = tasks.get_task("arith")
    problems = [p for level in (1, 2) for p in task.sample("train", 2, seed=2, difficulty=level)]  # two lengths
    if layout == "offline":  # prompts left-padded to a fixed width, responses after it
        return pairs_from_offline(stored_set(tokenizer))
    lines = [{"prompt": p.prompt, "chosen": p.solution, "rejected": wrong_last_step(p)} for p in problems]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return pairs_from_jsonl(str(path), tokenizer, 128)  # SFT's layout: prompt + response from column 0


def one_step(model_dir: str, loss_fn, batch: Batch, group: int, prompt_width: int | None, mesh):
    """(the round's host batch, its metrics, the parameters after one SGD step) of round 0 of `GroupEpochs`."""
    engine = Engine(models.from_pretrained(model_dir), mesh, loss_fn, tx=optax.sgd(0.5), group_size=group)
    round_ = GroupEpochs(batch, len(batch), seed=0, prompt_width=prompt_width).round(0, engine)
    metrics = engine.run_round(round_)
    return round_.batches[0], metrics, jax.tree.map(np.asarray, jax.device_get(engine.state.params))


@pytest.mark.parametrize(
    ("case", "devices"),  # in CI's slow set: two devices (the step's blocks: test_shared_prompt.py's meshes) and
    # DPO's pairs from a stored set (BCPG-NSA's layout)
    [
        ("bcpg_nsa", 1),
        pytest.param("bcpg_nsa", 2, marks=pytest.mark.slow),
        pytest.param("dpo_offline", 1, marks=pytest.mark.slow),
        ("dpo_jsonl", 1),
    ],
)
def test_a_step_with_the_prompt_apart_equals_the_step_on_whole_rows(case, devices, start_dir, tmp_path):
    tokenizer = models.load_tokenizer(start_dir)
    mesh = parallel.make_mesh(devices=jax.devices()[:devices])
    if case == "bcpg_nsa":
        batch, group = nsa_batch(tokenizer), G
        knobs = importlib.import_module("configs.offline_tiny").get_config("bcpg_nsa").offline.loss_kwargs
        loss_fn = make_policy_loss_fn(
            "bcpg", knobs.to_dict(), group_size=G, chunk_size=512,
            batch_kwargs={"step_ids": "step_ids", "step_correct": "step_correct"},
        )  # fmt: skip
    else:
        batch, group = dpo_pairs(tokenizer, case.split("_")[1], tmp_path), 2
        # Reference sums off the policy's, so the loss is away from its flat start and the gradient has a direction.
        batch = batch.with_rows(ref_sum=np.linspace(-3.0, 3.0, len(batch)).astype(np.float32))

        def loss_fn(model, b, rng):
            return dpo_loss_fn(model, b, rng, beta=0.5, kind="sigmoid", chunk_size=512)

    width = rollouts.response_start(batch)
    if case == "dpo_jsonl":  # prompts of several lengths from column 0: the part that all of them fill is set apart
        first_loss = batch.tokens["loss_mask"].argmax(axis=1)
        assert width == first_loss.min() < first_loss.max()
    else:
        assert width == STORED_PROMPT
    whole_batch, whole_metrics, whole_params = one_step(start_dir, loss_fn, batch, group, None, mesh)
    apart_batch, apart_metrics, apart_params = one_step(start_dir, loss_fn, batch, group, width, mesh)
    assert "prompt_ids" not in whole_batch and "shared_prompt" not in whole_metrics
    assert apart_metrics["shared_prompt"] == 1.0
    assert apart_batch["prompt_ids"].shape[0] == len(batch)
    assert apart_batch["input_ids"].shape[1] < whole_batch["input_ids"].shape[1]
    assert apart_metrics["loss"] == pytest.approx(whole_metrics["loss"], rel=1e-4, abs=1e-6)
    if case == "bcpg_nsa":
        assert apart_metrics["nsa_mined_frac"] == whole_metrics["nsa_mined_frac"] > 0  # step ids cut alike
    start = split_model(models.from_pretrained(start_dir))[1]
    moved = 0.0
    for a, b, s in zip(*map(jax.tree.leaves, (apart_params, whole_params, start)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)
        moved = max(moved, float(np.abs(b - np.asarray(s)).max()))
    assert moved > 1e-4  # the step changed the parameters, so their agreement says something


def test_a_round_whose_prompts_differ_within_a_group_runs_on_whole_rows(start_dir):
    batch = nsa_batch(models.load_tokenizer(start_dir))
    ids = batch.tokens["input_ids"].copy()
    ids[1, STORED_PROMPT - 2] += 1  # row 1's prompt is no longer its group's
    source = GroupEpochs(batch.with_tokens(input_ids=ids), len(batch), seed=0, prompt_width=STORED_PROMPT)
    round_ = source.round(0)
    assert round_.metrics["shared_prompt"] == 0.0 and "prompt_ids" not in round_.batches[0]


def test_shared_prompt_width_follows_the_switch_and_the_mesh(start_dir):
    config = importlib.import_module("configs.offline_tiny").get_config("bcpg_nsa")
    batch = nsa_batch(models.load_tokenizer(start_dir))
    auto = parallel.make_mesh(devices=jax.devices()[:2])
    assert shared_prompt_width(config, auto, batch) == STORED_PROMPT
    explicit = jax.make_mesh((2,), ("data",), devices=jax.devices()[:2])  # Explicit axes by default
    assert shared_prompt_width(config, explicit, batch) is None
    with config.unlocked():
        config.rl.share_prompt = False
    assert shared_prompt_width(config, auto, batch) is None
