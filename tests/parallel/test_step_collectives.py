"""The train step and the scoring pass are data parallel on the trainers' mesh (`parallel.make_mesh()`: Auto axes,
parameters FSDP over "fsdp", the batch over the data-parallel axes): every all-gather and all-reduce in the compiled
programs is weight-sized (FSDP's gathers of the parameters, the gradients' sums), none is activation-sized. So is
the online RL update's step with each group's prompt computed once and the responses packed, also where a
micro-batch holds fewer prompts than there are devices.

Without the layers' batch constraints (`models.layers.batch_split`), XLA splits each projection over its contraction
and all-gathers the [B*T, d] activations and all-reduces the [B*T, mlp] products instead (a 24576 x 768 all-reduce
per layer on the miniature's RL update of a 256-wide model; `benchmarks/train_step_data_parallel.py`)."""

import functools
import re

import jax
import numpy as np
import pytest

from nsa_jax import models, parallel
from nsa_jax.models import layers
from nsa_jax.train import init_state, jit_train_step, make_train_step, split_model, state_shardings
from nsa_jax.train.core import make_optimizer
from nsa_jax.train.core.scoring import make_scorer
from nsa_jax.train.sft import nll_loss
from tests.rl.rl_helpers import Learner, grouped_prompt_rollout, rl_config
from tests.train.helpers import optimizer_config

# Activations of a batch (64 x 64 tokens: [4096, 768] in the MLP) far larger than any weight (512 x 256).
WIDE = models.ModelConfig(
    vocab_size=512,
    hidden_size=256,
    intermediate_size=768,
    num_hidden_layers=1,
    num_attention_heads=8,
    num_key_value_heads=4,
    head_dim=32,
)


def _operand_sizes(text: str, op: str) -> list[int]:
    """Elements of each `op`'s result in compiled HLO text (a tuple of combined operands: its largest part)."""
    sizes = []
    for shape in re.findall(rf"= (\([^)]*\)|\S+) {op}(?:-start)?\(", text):
        parts = re.findall(r"\w+\[([\d,]*)\]", shape)
        sizes.append(max(int(np.prod([int(d) for d in dims.split(",") if d] or [1])) for dims in parts))
    return sizes


def _programs() -> tuple[str, str, int]:
    """(train step HLO, scoring HLO, the largest parameter's elements) on the 8-device mesh."""
    mesh = parallel.make_mesh()
    model = parallel.shard_model(models.init_model(WIDE, seed=0), mesh)
    tx = make_optimizer(optimizer_config(), total_steps=10)
    graphdef, params = split_model(model)
    shardings = state_shardings(model, tx, mesh)
    rng = np.random.default_rng(0)
    host = {
        "input_ids": rng.integers(1, WIDE.vocab_size, (64, 64)).astype(np.int32),
        "attention_mask": np.ones((64, 64), np.int32),
        "loss_mask": np.ones((64, 64), np.float32),
    }
    batch_shardings = {k: parallel.batch_sharding(mesh, 2) for k in host}
    batch = {k: jax.device_put(v, batch_shardings[k]) for k, v in host.items()}
    loss = functools.partial(nll_loss, chunk_size=256)
    step = jit_train_step(make_train_step(graphdef, loss, tx), shardings, batch_shardings)
    state = jax.jit(functools.partial(init_state, tx=tx, seed=0), out_shardings=shardings)(params)
    step_text = step.lower(state, batch).compile().as_text()
    score = make_scorer.__wrapped__(graphdef, chunk_size=256)  # uncached: a trace of its own
    score_text = score.lower(state.params, batch).compile().as_text()
    largest = max(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    return step_text, score_text, largest


def test_train_step_and_scoring_move_weights_not_activations():
    assert int(np.prod([parallel.make_mesh().shape[a] for a in parallel.BATCH_AXES])) == 8
    step_text, score_text, largest = _programs()
    gathered = _operand_sizes(step_text, "all-gather")
    assert gathered, "FSDP gathers the parameters in the step"
    for name, text in (("train step", step_text), ("scoring", score_text)):
        for op in ("all-gather", "all-reduce", "reduce-scatter"):
            sizes = _operand_sizes(text, op)
            assert max(sizes, default=0) <= largest, f"{name}: an activation-sized {op} ({max(sizes):,} elements)"


def test_without_the_batch_constraints_xla_gathers_activations(monkeypatch):
    """The check above can fail: the layers without `batch_split` move activation-sized arrays."""
    monkeypatch.setattr(layers, "batch_split", lambda x: x)
    step_text, _, largest = _programs()
    moved = _operand_sizes(step_text, "all-gather") + _operand_sizes(step_text, "all-reduce")
    assert max(moved) > 4 * largest


def _shared_prompt_programs(group: int, prompt_budget: int) -> tuple[str, str, int]:
    """(RL train step HLO, its scoring pass's HLO, the largest parameter's elements) on the 8-device mesh for one
    rollout of 64 rows in groups of `group` (64 / group prompts of up to `prompt_budget` tokens, set apart;
    responses of up to 64 tokens, packed), one micro-batch."""
    rows, budget = 64, 64
    rewards = np.random.default_rng(0).integers(0, 2, rows)
    rollout = grouped_prompt_rollout(
        rewards, group, prompt_budget, seed=0, response_budget=budget, vocab=WIDE.vocab_size
    )
    config = rl_config("grpo", rows=rows, group_size=group)
    config.rl.max_prompt_len, config.rl.max_new_tokens = prompt_budget, budget
    config.rl.share_prompt = config.rl.pack_responses = True
    mesh = parallel.make_mesh()
    learner = Learner(config, parallel.shard_model(models.init_model(WIDE, seed=0), mesh), mesh, total_steps=1)
    engine = learner.engine
    (host,) = learner.rl_update.round(rollout.batch(), engine, seed=0).batches
    assert "prompt_ids" in host and host["packed_width"].shape[1] < budget  # prompts set apart, responses packed
    step, batch = engine.prepared_step(host)
    step_text = step.lower(engine.state, batch).compile().as_text()
    names = ("input_ids", "attention_mask", "loss_mask", "prompt_ids", "prompt_mask", "packed_width")
    score = make_scorer.__wrapped__(engine.graphdef, chunk_size=config.logprob_chunk_size, group_size=group)
    score_text = score.lower(engine.state.params, {k: batch[k] for k in names}).compile().as_text()
    largest = max(int(np.prod(x.shape)) for x in jax.tree.leaves(engine.state.params))
    return step_text, score_text, largest


# 8 groups of 8: a prompt per device; 4 groups of 16: fewer prompts than devices, so the prompts' part of the
# forward cannot split over the prompts as the responses' does over the rows: it splits over the prompts' tokens.
# 4 prompts of up to 128 tokens make the prompts' MLP activations (up to [512, 768]) larger than any weight, so a
# forward split over its contraction instead (all-reducing them, as XLA chose before) fails the check.
@pytest.mark.parametrize(("group", "prompt_budget"), [(8, 32), (16, 128)])
def test_rl_step_with_shared_prompts_moves_weights_not_activations(group, prompt_budget):
    step_text, score_text, largest = _shared_prompt_programs(group, prompt_budget)
    for name, text in (("RL step", step_text), ("scoring", score_text)):
        for op in ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute"):
            sizes = _operand_sizes(text, op)
            assert max(sizes, default=0) <= largest, f"{name}: an activation-sized {op} ({max(sizes):,} elements)"


def test_batch_split_is_a_no_op_off_a_mesh():
    x = jax.numpy.ones((6, 3))
    assert layers.batch_split(x) is x
    assert jax.jit(layers.batch_split)(x).shape == (6, 3)
