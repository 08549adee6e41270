"""The update side of the RL loop against hand computations: first gradient = plain policy gradient; LENS learns
from all-wrong groups where GRPO gets exactly nothing."""

import dataclasses

import jax
import numpy as np
import optax
import pytest
from rl_helpers import Learner, grpo_advantages, hand_policy_gradient, learner_params, rl_config, synthetic_rollout

from nsa_jax import models
from tests.train.helpers import TINY, single_device_mesh


def _sgd_gradient(config, rollout, mesh):
    """One update with SGD at learning rate 1 from the seed-0 tiny model: the parameter change is the gradient.
    Also returns the update's metrics."""
    learner = Learner(config, models.init_model(TINY, seed=0), mesh, total_steps=1, tx=optax.sgd(1.0))
    before = learner_params(learner)
    metrics = learner.update(rollout, seed=0)
    return jax.tree.map(lambda a, b: a - b, before, learner_params(learner)), metrics


@pytest.mark.parametrize("micro_rows", [0, 4])
def test_first_gradient_is_the_plain_policy_gradient(micro_rows):
    rewards = [1, 0, 0, 1, 0, 0, 0, 1]
    rollout = synthetic_rollout(rewards)
    got, metrics = _sgd_gradient(rl_config("grpo", rows=8, micro_rows=micro_rows), rollout, single_device_mesh())
    want = hand_policy_gradient(rollout, grpo_advantages(rewards, 4))
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=2e-4, atol=1e-6), got, want)
    assert metrics["clip_frac_low"] == metrics["clip_frac_high"] == 0.0
    assert metrics["ratio_max"] == pytest.approx(1.0, abs=1e-5)


def _padded(rollout, left: int, right: int):
    """`rollout` with `left` all-padding columns before the prompts and `right` after the responses (as a rollout
    whose prompt and response budgets exceed what this batch used)."""

    def pad(a):
        return np.pad(a, ((0, 0), (left, right))) if a.ndim == 2 else a

    return dataclasses.replace(rollout, **{k: pad(v) for k, v in rollout.batch().arrays().items()})


@pytest.mark.parametrize(("agg", "denominator"), [("token-mean", None), ("seq-mean-token-sum-norm", 8 * 64)])
def test_padding_columns_are_dropped_and_the_gradient_is_unchanged(agg, denominator):
    """The update cuts the all-padding columns (24 of 40 here), and the gradient is still the hand policy gradient
    over the full width; Dr.GRPO's L_max stays the response budget (rl.max_new_tokens = 64), not the width."""
    rewards = [1, 0, 0, 1, 0, 0, 0, 1]
    rollout = _padded(synthetic_rollout(rewards), left=14, right=16)
    got, metrics = _sgd_gradient(rl_config("grpo", rows=8, agg=agg), rollout, single_device_mesh())
    want = hand_policy_gradient(rollout, grpo_advantages(rewards, 4), denominator)
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=2e-4, atol=1e-6), got, want)
    assert metrics["update_width"] == 16.0  # a band of 10 columns (4 prompt + 6 response) in steps of 8 (width 40)


def _change(loss: str, **knobs) -> float:
    """Largest parameter change of one update of the config's own optimiser on an all-wrong batch."""
    rollout = synthetic_rollout([0] * 8, seed=1)
    config = rl_config(loss, rows=8, **knobs)
    learner = Learner(config, models.init_model(TINY, seed=0), single_device_mesh(), total_steps=1)
    before = learner_params(learner)
    learner.update(rollout, seed=0)
    deltas = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), before, learner_params(learner))
    return max(jax.tree.leaves(deltas))


def test_lens_learns_from_all_wrong_groups_and_grpo_does_not():
    assert _change("grpo") == 0.0
    assert _change("lens", alpha=0.25) > 1e-6


def test_micro_batched_update_reports_the_full_batch_metrics():
    """Per-token statistics are combined exactly over micro-batches, also when a micro-batch's groups are all
    filtered out (it holds no tokens and must count for nothing)."""
    rewards = [0, 0, 1, 0, 1, 1, 0, 1]  # groups of 2: all wrong, mixed, all right, mixed
    rollout = synthetic_rollout(rewards, group_size=2, seed=4)
    reports = []
    for micro_rows in (0, 4):
        config = rl_config("grpo", rows=8, micro_rows=micro_rows, group_size=2)
        config.unlock()
        config.rl.filter_homogeneous = True
        learner = Learner(config, models.init_model(TINY, seed=0), single_device_mesh(), total_steps=1)
        reports.append(learner.update(rollout, seed=0))
    full, micro = reports
    kept = rollout.loss_mask.reshape(4, 2, -1)[[1, 3]]  # the mixed groups' tokens
    assert full["tokens"] == micro["tokens"] == kept.sum()
    assert micro["ratio_min"] == pytest.approx(1.0, abs=1e-5) and micro["ratio_max"] == pytest.approx(1.0, abs=1e-5)
    # numpy reference of the token statistics of the GRPO advantages on the kept tokens (population std)
    adv = grpo_advantages(rewards, 2).reshape(4, 2)[[1, 3]]
    adv_tok = np.repeat(adv[..., None], kept.shape[-1], axis=-1)[kept > 0]
    for name in ("ratio_mean", "clip_frac_low", "clip_frac_high", "kl_mean", "adv_mean", "adv_std"):
        assert micro[name] == pytest.approx(full[name], abs=1e-5), name
    assert micro["adv_mean"] == pytest.approx(adv_tok.mean(), abs=1e-5)
    assert micro["adv_std"] == pytest.approx(adv_tok.std(), abs=1e-5)


def _ngrpo_advantages(rewards, group_size: int, eps: float = 1e-6) -> np.ndarray:
    """numpy NGRPO advantages: GRPO statistics (ddof 1) over each group plus one virtual reward-1 answer."""
    out = []
    for r in np.asarray(rewards, np.float64).reshape(-1, group_size):
        v = np.append(r, 1.0)
        out.append((r - v.mean()) / (v.std(ddof=1) + eps))
    return np.concatenate(out).astype(np.float32)


@pytest.mark.parametrize(
    ("loss", "advantages", "rewards"),
    [
        ("grpo", grpo_advantages, [1, 0, 0, 1, 0, 0, 0, 1]),
        ("ngrpo", _ngrpo_advantages, [1, 0, 0, 1, 0, 0, 0, 1]),
        ("grpo", grpo_advantages, [1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 0]),
    ],
)
def test_update_on_an_explicit_mesh_is_the_hand_policy_gradient(loss, advantages, rewards):
    """The whole update (scoring pass, sharded train step) on a 2 x 4 mesh of Explicit axes, the default of
    `jax.make_mesh`: the group axis of the rewards is sharded there, which slicing and `jnp.repeat` did not allow.
    With 16 rows in groups of 4, each device holds half a group, which the micro-batch layout [groups, G] cannot
    split over all 8 devices (`parallel.split_rows` gathers over fsdp; this raised a ShardingTypeError before)."""
    rollout = synthetic_rollout(rewards)
    mesh = jax.make_mesh((2, 4, 1), ("data", "fsdp", "tensor"), axis_types=(jax.sharding.AxisType.Explicit,) * 3)
    with jax.set_mesh(mesh):
        got, _ = _sgd_gradient(rl_config(loss, rows=len(rewards)), rollout, mesh)
    want = hand_policy_gradient(rollout, advantages(rewards, 4))
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=2e-4, atol=1e-6), got, want)
