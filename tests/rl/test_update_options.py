"""The optional parts of the RL update against hand computations: the reference KL penalty (`rl.beta_kl`), truncated
importance sampling of the sampler/trainer mismatch (`rl.tis_cap`), the DAPO homogeneous-group filter
(`rl.filter_homogeneous`) and the mismatch statistics.

As in test_update.py, each Learner takes plain SGD with learning rate 1, so one update's parameter change is its
gradient, and the reference is `jax.grad` of the formula written here from full float32 logits (never the library's
`token_logprobs`, loss functions or advantages). Every update below is one optimiser step whose PPO ratio starts at
exactly 1, so the clipped surrogate's gradient is `A * grad(logp)` per token.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from rl_helpers import Learner, grpo_advantages, learner_params, rl_config, synthetic_rollout

from nsa_jax import models
from nsa_jax.rollouts import mismatch_stats
from nsa_jax.train.rl import RLUpdate, logp_old_from_step
from tests.train.helpers import TINY, single_device_mesh

RTOL, ATOL = 2e-4, 1e-6


def _learner(config) -> Learner:
    return Learner(config, models.init_model(TINY, seed=0), single_device_mesh(), total_steps=1, tx=optax.sgd(1.0))


def _sgd_gradient(learner: Learner, rollout) -> tuple[dict, dict, dict]:
    """(parameters before, gradient read off the SGD step, update metrics)."""
    before = learner_params(learner)
    metrics = learner.update(rollout, seed=0)
    return before, jax.tree.map(lambda a, b: a - b, before, learner_params(learner)), metrics


@functools.cache
def _graphdef() -> nnx.GraphDef:
    return nnx.split(models.init_model(TINY, seed=0), nnx.Param)[0]


def _hand_logp(params, input_ids, attention_mask) -> jax.Array:
    """[B, T] log-prob of each token from the position before it (column 0 is 0), from full float32 logits."""
    logits = nnx.merge(_graphdef(), params)(input_ids, attention_mask=attention_mask)  # [B, T, V]
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits[:, :-1].astype(jnp.float32)), input_ids[:, 1:, None], -1)
    return jnp.pad(logp[..., 0], ((0, 0), (1, 0)))


@jax.jit
def _hand(params, input_ids, attention_mask, mask, adv, w, logp_ref, beta):
    """The reference loss, written from ALGORITHMS.md at PPO ratio 1 with token-mean aggregation:
    `-sum(w * A * logp * mask) / sum(mask) + beta * sum(k3 * mask) / sum(mask)`, `k3 = exp(d) - d - 1` with
    `d = logp_ref - logp`; `w` and `logp_ref` are constants. Returns (gradient, (KL token-mean, logp [B, T])).
    One jitted function for every test (same shapes), so it compiles once."""

    def loss(p):
        logp = _hand_logp(p, input_ids, attention_mask)
        n = jnp.sum(mask)
        d = logp_ref - logp
        kl = jnp.sum((jnp.exp(d) - d - 1.0) * mask) / n
        return -jnp.sum(w * adv[:, None] * logp * mask) / n + beta * kl, (kl, logp)

    return jax.grad(loss, has_aux=True)(params)


def _reference(params, rollout, adv, *, mask=None, w=1.0, logp_ref=None, beta=0.0):
    """(gradient, KL token-mean, logp [B, T]) of `_hand` on `rollout` (default mask: its response tokens)."""
    mask = rollout.loss_mask if mask is None else mask
    shape = rollout.loss_mask.shape
    grad, (kl, logp) = _hand(
        params,
        rollout.input_ids,
        rollout.attention_mask,
        np.asarray(mask, np.float32),
        np.asarray(adv, np.float32),
        np.broadcast_to(np.asarray(w, np.float32), shape),
        np.zeros(shape, np.float32) if logp_ref is None else np.asarray(logp_ref, np.float32),
        np.float32(beta),
    )
    return jax.tree.map(np.asarray, grad), float(kl), np.asarray(logp)


def _assert_tree_close(got, want, rtol=RTOL, atol=ATOL):
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=rtol, atol=atol), got, want)


def _tree_rel_diff(a, b) -> float:
    """|a - b| / |b| over the whole tree (to show two references are far apart, so a check can fail)."""
    num = sum(float(np.sum(np.square(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    den = sum(float(np.sum(np.square(y))) for y in jax.tree.leaves(b))
    return (num / den) ** 0.5


def test_reference_kl_is_zero_at_the_start_and_matches_k3_after_one_update():
    beta = 0.5
    rewards = [1, 0, 0, 1, 0, 0, 0, 1]
    rollout = synthetic_rollout(rewards, seed=2)
    config = rl_config("grpo", rows=8)
    config.rl.beta_kl = beta
    learner = _learner(config)
    adv = grpo_advantages(rewards, 4)
    mask = rollout.loss_mask

    # (i) First update: the reference is the policy itself, so k3 = 0 and its gradient exp(d) - 1 = 0: the plain
    # policy gradient.
    start, grad, metrics = _sgd_gradient(learner, rollout)
    want, _, logp_ref = _reference(start, rollout, adv)
    _assert_tree_close(grad, want)
    assert metrics["kl_mean"] == pytest.approx(0.0, abs=1e-6)

    # (ii) Second update from theta_1 = theta_0 - g: the reference stays theta_0, so the KL term is live.
    theta1, grad, metrics = _sgd_gradient(learner, rollout)
    want, kl, _ = _reference(theta1, rollout, adv, logp_ref=logp_ref, beta=beta)
    assert kl > 1e-3, "the first step moved the policy away from the reference"
    assert metrics["kl_mean"] == pytest.approx(kl, rel=1e-3)
    # At ratio 1 the surrogate is A per token, so the loss is -token-mean(A) + beta * KL.
    assert metrics["loss"] == pytest.approx(-np.sum(adv[:, None] * mask) / mask.sum() + beta * kl, rel=1e-4, abs=1e-6)
    _assert_tree_close(grad, want)
    pg, _, _ = _reference(theta1, rollout, adv)
    assert _tree_rel_diff(pg, want) > 0.05, "the KL gradient is large enough for this check to see it"


def test_logp_old_comes_from_the_step_only_when_a_rollout_is_one_optimiser_step():
    one = rl_config("grpo", rows=8)  # 8 responses, batch_size 8, one PPO epoch
    assert logp_old_from_step(one)
    for change in ({"rl.logp_old": "score"}, {"rl.ppo_epochs": 2}, {"batch_size": 4}):
        config = rl_config("grpo", rows=8)
        with config.unlocked():
            config.update_from_flattened_dict(change)
        assert not logp_old_from_step(config), change
    bad = rl_config("grpo", rows=8)
    bad.rl.logp_old = "sampler"
    with pytest.raises(ValueError, match="rl.logp_old"):
        logp_old_from_step(bad)


# "auto": the one-step rollout leaves logp_old to the step; "score": the separate pass. Both must give the hand
# gradient and the same mismatch statistics.
@pytest.mark.parametrize("mode", ["auto", "score"])
def test_tis_scales_each_token_gradient_by_the_capped_mismatch_ratio_and_keeps_the_loss(mode, monkeypatch):
    cap = 2.0
    rewards = [0, 1, 0, 0, 1, 1, 0, 1]
    rollout = synthetic_rollout(rewards, seed=3)
    config = rl_config("grpo", rows=8)
    config.rl.tis_cap = cap
    config.rl.logp_old = mode
    learner = _learner(config)
    passes = []
    score = RLUpdate.score
    monkeypatch.setattr(RLUpdate, "score", lambda self, *a: passes.append(1) or score(self, *a))
    adv = grpo_advantages(rewards, 4)
    mask = rollout.loss_mask
    on = mask > 0

    # A sampler that agrees with the trainer (its log-probs are the trainer's own): weight 1, plain gradient.
    tokens = {k: rollout.batch().tokens[k] for k in ("input_ids", "attention_mask", "loss_mask")}
    agree = dataclasses.replace(rollout, sampler_logp=learner.score(learner.state.params, tokens))
    start, grad, metrics = _sgd_gradient(learner, agree)
    _assert_tree_close(grad, _reference(start, rollout, adv)[0])
    for k in ("mismatch_ratio_mean", "mismatch_ratio_max", "mismatch_ratio_min"):
        assert metrics[k] == pytest.approx(1.0, abs=1e-6), k

    # A sampler off by delta per response token: w = min(exp(logp_old - sampler_logp), cap) = min(exp(delta), cap),
    # with deltas away from log(cap) so float differences cannot move a token across the cap. Outside the response
    # the sampler's numbers are garbage; they must not reach the gradient or the statistics.
    theta1 = learner_params(learner)
    plain, _, logp_old = _reference(theta1, rollout, adv)
    delta = np.random.default_rng(0).choice([-1.0, -0.3, 0.0, 0.4, 1.2, 2.0], size=mask.shape) * mask
    sampler_logp = np.where(on, logp_old - delta, -30.0).astype(np.float32)
    off = dataclasses.replace(rollout, sampler_logp=sampler_logp)
    w = np.minimum(np.exp(delta), cap) * mask
    assert (np.exp(delta[on]) > cap).any() and (np.exp(delta[on]) < 1).any()

    passes.clear()
    _, grad, metrics = _sgd_gradient(learner, off)
    assert len(passes) == (mode == "score"), "the scoring pass runs only when asked for"
    want = _reference(theta1, rollout, adv, w=w)[0]
    _assert_tree_close(grad, want)
    assert _tree_rel_diff(plain, want) > 0.05, "the weights change the gradient"
    # The forward value is untouched: ratio 1 everywhere and loss -token-mean(A), as without TIS.
    assert metrics["loss"] == pytest.approx(-np.sum(adv[:, None] * mask) / mask.sum(), rel=1e-5, abs=1e-7)
    assert metrics["ratio_min"] == pytest.approx(1.0, abs=1e-5)
    assert metrics["ratio_max"] == pytest.approx(1.0, abs=1e-5)
    # ... and the update reports the mismatch it corrected, over response tokens only.
    ratio = np.exp(delta[on])
    assert metrics["mismatch_ratio_mean"] == pytest.approx(ratio.mean(), rel=1e-4)
    assert metrics["mismatch_ratio_max"] == pytest.approx(ratio.max(), rel=1e-4)
    assert metrics["mismatch_ratio_min"] == pytest.approx(ratio.min(), rel=1e-4)


def _lens_advantages(rewards, logp_old, mask, group_size: int, alpha: float = 0.25, eps: float = 1e-6):
    """LENS advantages from ALGORITHMS.md section 2 (pbar in D_imp, ddof 1), per group in float64."""
    r = np.asarray(rewards, np.float64).reshape(-1, group_size)
    pbar = np.exp((logp_old * mask).sum(1) / mask.sum(1)).reshape(-1, group_size)
    adv = np.zeros_like(r)
    for q in range(len(r)):
        if r[q].all():
            continue  # all correct: 0
        d = 2 * pbar[q].max()
        if r[q].any():
            d = max(1 / np.mean(r[q] / pbar[q]), d)
        rt = r[q] - (1 - r[q]) / group_size * pbar[q] / (d - pbar[q])
        centred = rt - rt.mean()
        adv[q] = centred / (rt.std(ddof=1) + eps) if r[q].any() else alpha * centred
    return adv.reshape(-1).astype(np.float32)


def test_homogeneous_group_filter_keeps_only_mixed_groups_in_the_token_mean():
    # LENS, which learns from all-wrong groups when unfiltered. Groups of 2: all wrong, mixed, all right, mixed; two
    # micro-batches of two groups each, so (whatever the update's group permutation) the deferred reduction must
    # divide by the kept tokens of the whole batch, and a micro-batch may hold no kept token at all.
    rewards = [0, 0, 1, 0, 1, 1, 0, 1]
    rollout = synthetic_rollout(rewards, group_size=2, seed=4)
    config = rl_config("lens", rows=8, micro_rows=4, group_size=2, alpha=0.25)
    config.rl.filter_homogeneous = True
    learner = _learner(config)
    mask = rollout.loss_mask
    kept = mask * np.repeat([False, True, False, True], 2)[:, None]

    start, grad, metrics = _sgd_gradient(learner, rollout)
    _, _, logp_old = _reference(start, rollout, np.zeros(8))
    adv = _lens_advantages(rewards, logp_old, mask, 2)
    assert adv[:2].any(), "unfiltered, the all-wrong group would carry gradient"
    want = _reference(start, rollout, adv, mask=kept)[0]
    _assert_tree_close(grad, want)
    assert metrics["filtered_frac"] == 0.5
    assert _tree_rel_diff(_reference(start, rollout, adv)[0], want) > 0.05, "the filter changes the gradient"

    # A batch of only all-wrong groups is filtered out whole: the empty token-mean gives a zero gradient (not NaN),
    # where LENS unfiltered moves (test_update.py).
    theta1 = learner_params(learner)
    _, grad, metrics = _sgd_gradient(learner, synthetic_rollout([0] * 8, group_size=2, seed=1))
    assert metrics["filtered_frac"] == 1.0
    assert metrics["loss"] == 0.0 and metrics["skipped_nonfinite"] == 0.0
    for g, p in zip(jax.tree.leaves(grad), jax.tree.leaves(theta1)):
        assert not g.any() and np.isfinite(p).all()


def test_mismatch_stats_against_numpy_over_response_tokens_only():
    rng = np.random.default_rng(5)
    logp_old = rng.normal(-2.0, 1.0, (3, 7))
    sampler = logp_old + rng.normal(0.0, 0.5, (3, 7))
    mask = (rng.random((3, 7)) < 0.6).astype(np.float32)
    mask[0, 0] = 1.0  # at least one response token
    # Outside the response the sampler's numbers would set the max and min if they were counted.
    sampler = np.where(mask > 0, sampler, logp_old - 8.0 * np.sign(rng.normal(size=(3, 7))))
    ratio = np.exp(logp_old - sampler)[mask > 0]
    stats = mismatch_stats(logp_old, sampler, mask)
    assert stats["mismatch_ratio_mean"] == pytest.approx(ratio.mean(), rel=1e-12)
    assert stats["mismatch_ratio_max"] == pytest.approx(ratio.max(), rel=1e-12)
    assert stats["mismatch_ratio_min"] == pytest.approx(ratio.min(), rel=1e-12)
    assert ratio.max() < np.exp(8.0) / 10 and ratio.min() > np.exp(-8.0) * 10
    # No response token at all: the neutral ratio 1.
    empty = mismatch_stats(logp_old, sampler, np.zeros_like(mask))
    assert empty == {"mismatch_ratio_mean": 1.0, "mismatch_ratio_max": 1.0, "mismatch_ratio_min": 1.0}
