"""`rl.share_prompt`: the update computes each group's prompt once for its G responses. References are the whole
rows: `Transformer.hidden_states` on `prompt + response` for the model function, and the hand policy gradient from
full float32 logits (rl_helpers) for the update."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import AxisType
from rl_helpers import (
    Learner,
    grouped_prompt_rollout,
    grpo_advantages,
    hand_policy_gradient,
    learner_params,
    rl_config,
)

from nsa_jax import models, parallel
from nsa_jax.rollouts import Batch, prompt_apart
from tests.train.helpers import TINY, single_device_mesh

PROMPT_BUDGET = 6


@pytest.mark.parametrize(("attention", "chunk"), [("dense", 512), ("chunked", 4)])
def test_hidden_states_after_prompt_equal_the_whole_rows_and_their_gradient(attention, chunk):
    model = models.init_model(dataclasses.replace(TINY, attention=attention, attention_chunk=chunk), seed=0)
    graphdef, state = nnx.split(model)
    rollout = grouped_prompt_rollout([0] * 12, group_size=4, prompt_budget=PROMPT_BUDGET, seed=5)
    ids, mask = jnp.asarray(rollout.input_ids), jnp.asarray(rollout.attention_mask)
    p, g = PROMPT_BUDGET, 4
    real = np.asarray(mask[:, p:]) > 0
    weights = jnp.asarray(np.random.default_rng(0).normal(size=TINY.hidden_size), jnp.float32)

    def whole(s):
        return nnx.merge(graphdef, s).hidden_states(ids, mask)  # [B, P + T, d]

    def shared(s):
        return nnx.merge(graphdef, s).hidden_states_after_prompt(ids[::g, :p], mask[::g, :p], ids[:, p:], mask[:, p:])

    want = jax.jit(whole)(state)
    prompt_hidden, hidden = jax.jit(shared)(state)
    assert prompt_hidden.shape == (3, p, TINY.hidden_size) and hidden.shape == (12, 6, TINY.hidden_size)
    np.testing.assert_allclose(np.asarray(hidden)[real], np.asarray(want[:, p:])[real], atol=2e-5)
    on_prompt = np.asarray(mask[::g, :p]) > 0
    np.testing.assert_allclose(np.asarray(prompt_hidden)[on_prompt], np.asarray(want[::g, :p])[on_prompt], atol=2e-5)

    # The gradient through the responses' hidden states reaches the prompt's computation once per response.
    grad_whole = jax.jit(jax.grad(lambda s: jnp.sum((whole(s)[:, p:] @ weights) * real)))(state)
    grad_shared = jax.jit(jax.grad(lambda s: jnp.sum((shared(s)[1] @ weights) * real)))(state)
    for a, b in zip(jax.tree.leaves(grad_whole), jax.tree.leaves(grad_shared), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_prompt_apart_moves_each_groups_prompt_to_per_row_arrays():
    rollout = grouped_prompt_rollout([0, 1] * 4, group_size=4, prompt_budget=PROMPT_BUDGET, seed=1)
    batch = rollout.batch()
    apart = prompt_apart(batch, PROMPT_BUDGET)
    used = np.flatnonzero(batch.tokens["attention_mask"][:, :PROMPT_BUDGET].any(0))
    prompt_ids = apart.rows["prompt_ids"]
    # The prompt part keeps the columns any prompt uses (widened to the 8-column quantum, here the whole budget).
    assert prompt_ids.shape[1] >= PROMPT_BUDGET - used[0]
    np.testing.assert_array_equal(prompt_ids[:, -1], batch.tokens["input_ids"][:, PROMPT_BUDGET - 1])
    np.testing.assert_array_equal(apart.tokens["input_ids"], batch.tokens["input_ids"][:, PROMPT_BUDGET:][:, :8])
    np.testing.assert_array_equal(apart.tokens["loss_mask"][:, 0], 1)  # column 0 is the first response token
    assert apart.rows["rewards"] is batch.rows["rewards"]

    # Refused: a prompt that differs within its group, loss tokens among the prompt columns, groups of one.
    ids = batch.tokens["input_ids"].copy()
    ids[1, PROMPT_BUDGET - 1] += 1
    assert prompt_apart(batch.with_tokens(input_ids=ids), PROMPT_BUDGET) is None
    loss = batch.tokens["loss_mask"].copy()
    loss[0, PROMPT_BUDGET - 1] = 1
    assert prompt_apart(batch.with_tokens(loss_mask=loss), PROMPT_BUDGET) is None
    assert prompt_apart(Batch(batch.tokens, batch.rows, group_size=1), PROMPT_BUDGET) is None


def _sgd_update(config, rollout, mesh=None):
    mesh = mesh or single_device_mesh()
    learner = Learner(config, models.init_model(TINY, seed=0), mesh, total_steps=1, tx=optax.sgd(1.0))
    before = learner_params(learner)
    metrics = learner.update(rollout, seed=0)
    return jax.tree.map(lambda a, b: a - b, before, learner_params(learner)), metrics


# Default: logp_old from the step. "score": the scoring pass runs on the shared layout too (its logp_old must equal
# the step's log-probs: PPO ratio 1), with a frozen reference (beta_kl) and micro-batches of 2 groups. "auto-mesh":
# groups split over 8 devices of Auto axes (blocks of 2 rows: too few to pack); "packed-mesh": over 2 devices (the
# packing's blocks are theirs). "explicit-mesh": the same on Explicit axes, where whole rows are used.
@pytest.mark.parametrize(
    "variant",
    ["step", "score+kl+micro", "auto-mesh", "packed-mesh", pytest.param("explicit-mesh", marks=pytest.mark.slow)],
)
def test_update_with_shared_prompts_is_the_hand_policy_gradient(variant):
    rewards = [1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0]
    if variant == "explicit-mesh":  # 2 groups over 2 x 4 devices, the layout GRPO's group axis allows there
        rewards = rewards[:8]
    seed = 1 if variant == "packed-mesh" else 3  # seed 1's shorter responses pack in blocks of 8 rows
    rollout = grouped_prompt_rollout(rewards, group_size=4, prompt_budget=PROMPT_BUDGET, seed=seed)
    config = rl_config("grpo", rows=len(rewards), micro_rows=8 if variant == "score+kl+micro" else 0)
    config.rl.max_prompt_len = PROMPT_BUDGET
    config.rl.share_prompt = True
    if variant == "score+kl+micro":
        config.rl.logp_old = "score"
        config.rl.beta_kl = 0.1  # the first update's policy is the reference: KL 0 and no KL gradient
    if variant == "auto-mesh":
        got, metrics = _sgd_update(config, rollout, parallel.make_mesh(data=2, fsdp=4))
    elif variant == "packed-mesh":
        got, metrics = _sgd_update(config, rollout, parallel.make_mesh(data=1, fsdp=2, devices=jax.devices()[:2]))
    elif variant == "explicit-mesh":
        mesh = jax.make_mesh((2, 4, 1), parallel.MESH_AXES, axis_types=(AxisType.Explicit,) * 3)
        with jax.set_mesh(mesh):
            got, metrics = _sgd_update(config, rollout, mesh)
    else:
        got, metrics = _sgd_update(config, rollout)
    assert metrics["shared_prompt"] == (0.0 if variant == "explicit-mesh" else 1.0)
    # The responses (1-6 tokens in 6 columns) run packed into 4 slots a row where a block holds 8 or 16 rows.
    assert metrics["packed_frac"] == (1.0 if variant in ("auto-mesh", "explicit-mesh") else 4 / 6)
    want = hand_policy_gradient(rollout, grpo_advantages(rewards, 4))
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=2e-4, atol=1e-6), got, want)
    assert metrics["ratio_min"] == pytest.approx(1.0, abs=1e-5) and metrics["ratio_max"] == pytest.approx(1.0, abs=1e-5)
    if variant == "score+kl+micro":
        assert metrics["kl_mean"] == pytest.approx(0.0, abs=1e-6)


def test_scoring_pass_with_packed_responses_equals_the_padded_rows():
    """`RLUpdate.score` (logp_old over several steps, the reference) packs the responses like the step: the same
    log-probs as on the padded rows, over one device and two."""
    rollout = grouped_prompt_rollout([0, 1] * 8, group_size=4, prompt_budget=PROMPT_BUDGET, seed=1)
    for mesh in (single_device_mesh(), parallel.make_mesh(data=1, fsdp=2, devices=jax.devices()[:2])):
        got = {}
        for pack in (True, False):
            config = rl_config("grpo", rows=16)
            config.rl.max_prompt_len, config.rl.share_prompt, config.rl.pack_responses = PROMPT_BUDGET, True, pack
            learner = Learner(config, models.init_model(TINY, seed=0), mesh, total_steps=1, tx=optax.sgd(1.0))
            batch = prompt_apart(rollout.batch(), PROMPT_BUDGET)
            assert learner.rl_update.packs(batch) == pack
            got[pack] = learner.rl_update.score(learner.engine, learner.engine.state.params, batch)
        mask = batch.tokens["attention_mask"]
        assert models.packed_width([mask], parallel.batch_shards(mesh, 16)) < mask.shape[1]  # packing saves columns
        real = batch.tokens["loss_mask"] > 0
        np.testing.assert_allclose(got[True][real], got[False][real], atol=1e-5)
        assert np.isfinite(got[True]).all() and (got[True][~real] == 0).all()


def test_the_update_packs_long_rollouts_into_few_widths():
    """Each packed width compiles the train step again. Over rollouts of a 256-token budget (log-normal lengths) the
    update's widths stay on a grid of at most 16 per band width (multiples of 4), each the smallest grid width that
    holds the fullest block; at a step of 4 the same rollouts would draw more."""
    config = rl_config("grpo", rows=32, micro_rows=16)
    config.rl.max_prompt_len, config.rl.share_prompt, config.rl.pack_responses = PROMPT_BUDGET, True, True
    learner = Learner(config, models.init_model(TINY, seed=0), single_device_mesh(), total_steps=1)
    rng = np.random.default_rng(0)
    widths, fine = {}, set()
    for seed in range(40):
        rollout = grouped_prompt_rollout([0.0, 1.0] * 16, group_size=4, prompt_budget=PROMPT_BUDGET, seed=seed)
        lengths = np.clip(rng.lognormal(np.log(90), 0.5, 32), 1, 256).astype(int)
        response = (np.arange(256)[None] < lengths[:, None]).astype(np.int32)
        prompt = rollout.attention_mask[:, :PROMPT_BUDGET]
        ids = rng.integers(1, TINY.vocab_size, (32, 256)) * response
        rollout = dataclasses.replace(
            rollout,
            input_ids=np.concatenate([rollout.input_ids[:, :PROMPT_BUDGET], ids], 1).astype(np.int32),
            attention_mask=np.concatenate([prompt, response], 1),
            loss_mask=np.concatenate([np.zeros_like(prompt), response], 1).astype(np.float32),
            sampler_logp=np.zeros((32, PROMPT_BUDGET + 256), np.float32),
        )
        (step,) = learner.rl_update.round(rollout.batch(), learner.engine, seed).batches
        band = step["input_ids"].shape[1]
        quantum = 4 * -(-band // 64)  # the smallest multiple of 4 with at most 16 steps up to the band
        micro = list(learner.engine.micro_batch_rows(step["attention_mask"]))  # the step's two micro-batches
        need = max(-(-int(m.sum()) // 16) for m in micro)  # one block per micro-batch on one device
        width = step["packed_width"].shape[1] if "packed_width" in step else band
        assert width % quantum == 0 or width == band
        assert width >= need and (width == band or width - quantum < need)
        widths.setdefault(band, set()).add(width)
        fine.add(models.packed_width(micro, 1, quantum=4))
    assert all(len(w) <= 16 for w in widths.values())
    assert sum(map(len, widths.values())) < len(fine)
