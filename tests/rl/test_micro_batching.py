"""The core step's group-preserving micro-batches, whichever loss runs on them: for every registered policy loss the
micro-batched update equals the full-batch one; extra per-token and per-row arrays a loss declares reach it
unchanged through the token-band cut, micro-batching and sharding."""

import jax
import numpy as np
import optax
import pytest
from rl_helpers import Learner, learner_params, rl_config, synthetic_rollout

from nsa_jax import losses, models, parallel
from nsa_jax.rollouts import Batch
from nsa_jax.train.core import Engine
from nsa_jax.train.rl import RLUpdate, make_policy_loss_fn
from tests.train.helpers import TINY, single_device_mesh

# Groups of 4: mixed, all wrong (LENS learns from it), all right (NGRPO drops it), mixed. Group statistics differ
# between groups, so a micro-batch holding part of a group would change every advantage.
REWARDS = [1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1]


def _sgd_update(config, batch: Batch, mesh=None, loss_fn=None):
    """Gradient (the parameter change of SGD at learning rate 1) and metrics of one update on `batch`."""
    mesh = mesh or single_device_mesh()
    model = models.init_model(TINY, seed=0)
    if loss_fn is None:
        learner = Learner(config, model, mesh, total_steps=1, tx=optax.sgd(1.0))
        engine, update = learner.engine, learner.rl_update
    else:
        engine = Engine.from_config(
            config, model, mesh, loss_fn, total_steps=1, group_size=config.rl.group_size, tx=optax.sgd(1.0)
        )
        update = RLUpdate(config, engine)
    before = learner_params(engine)
    metrics = engine.run_round(update.round(batch, engine, seed=0))
    return jax.tree.map(lambda a, b: a - b, before, learner_params(engine)), metrics


# The losses with group statistics (or per-row terms) run in the default suite; the rest, which differ from these
# only in per-response constants, in the slow set CI also runs (each is one more compilation of the train step).
DEFAULT = {"grpo", "lens", "ngrpo", "bcpg"}


@pytest.mark.parametrize(
    "loss", [n if n in DEFAULT else pytest.param(n, marks=pytest.mark.slow) for n in sorted(losses.POLICY_LOSSES)]
)
def test_micro_batched_update_equals_the_full_batch_for_every_loss(loss):
    batch = synthetic_rollout(REWARDS, seed=2).batch()
    full, full_metrics = _sgd_update(rl_config(loss, rows=16), batch)
    # 2 micro-batches of 2 groups each: the step gives micro-batch 0 groups 0 and 2, micro-batch 1 groups 1 and 3.
    micro, micro_metrics = _sgd_update(rl_config(loss, rows=16, micro_rows=8), batch)
    assert max(float(np.max(np.abs(g))) for g in jax.tree.leaves(full)) > 1e-6, "the update moved the parameters"
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7), micro, full)
    assert micro_metrics["loss"] == pytest.approx(full_metrics["loss"], rel=1e-5, abs=1e-7)


def _with_steps(batch: Batch, correct: bool) -> Batch:
    """BCPG-NSA's extra arrays: step ids per token (two steps per response, -1 off the response) and one consensus
    label per step per row ([B, 2], a per-row array that must not be cut with the tokens)."""
    mask = batch.tokens["loss_mask"]
    position = np.cumsum(mask, axis=1) - 1  # index of each response token within its response
    step_ids = np.where(mask > 0, (position >= 2).astype(np.int32), -1).astype(np.int32)
    step_correct = np.tile(np.array([[correct, False]]), (len(batch), 1))
    return batch.with_tokens(step_ids=step_ids).with_rows(step_correct=step_correct)


def _padded(batch: Batch, left: int, right: int) -> Batch:
    """All-padding columns around every per-token array (step ids padded with -1), as a rollout with budgets wider
    than the tokens it holds."""
    tokens = {
        k: np.pad(v, ((0, 0), (left, right)), constant_values=-1 if k == "step_ids" else 0)
        for k, v in batch.tokens.items()
    }
    return Batch(tokens, batch.rows, batch.group_size)


def test_extra_arrays_reach_the_loss_through_band_cut_micro_batches_and_sharding():
    config = rl_config("bcpg", rows=16, micro_rows=8, nsa_beta=0.5)
    loss_fn = make_policy_loss_fn(
        "bcpg",
        {"nsa_beta": 0.5},
        group_size=4,
        chunk_size=16,
        batch_kwargs={"step_ids": "step_ids", "step_correct": "step_correct"},
    )
    plain = _with_steps(synthetic_rollout(REWARDS, seed=2).batch(), correct=True)
    want, want_metrics = _sgd_update(rl_config("bcpg", rows=16, nsa_beta=0.5), plain, loss_fn=loss_fn)
    mesh = parallel.make_mesh(2, 2, 2)  # 4 batch shards: each micro-batch of 8 rows splits evenly
    got, metrics = _sgd_update(config, _padded(plain, left=9, right=14), mesh=mesh, loss_fn=loss_fn)
    assert metrics["update_width"] < 10 + 9 + 14  # the band was cut
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7), got, want)
    assert metrics["nsa_mined_frac"] == pytest.approx(want_metrics["nsa_mined_frac"])
    # The labels matter: mined tokens of wrong responses are weighted by beta, so no mined step changes the update.
    assert want_metrics["nsa_mined_frac"] > 0.1
    unmined, unmined_metrics = _sgd_update(config, _with_steps(plain, correct=False), mesh=mesh, loss_fn=loss_fn)
    assert unmined_metrics["nsa_mined_frac"] == 0.0
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(unmined), jax.tree.leaves(want))) > 1e-6
