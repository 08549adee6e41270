"""Each loss against the independent float64 numpy references of losses_reference.py, on random batches with
random masks and group sizes: values and gradients with respect to logp (analytic numpy gradients)."""

import jax
import jax.numpy as jnp
import losses_reference as ref
import numpy as np
import pytest
from losses_testing import jit_call, loss_value_and_grad, random_batch

from nsa_jax import losses

MODES = ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
SHAPES = [(3, 4, 7), (2, 1, 5), (1, 8, 6), (4, 3, 9)]  # (Q, G, T)
TOL = {"rtol": 2e-4, "atol": 2e-6}


@pytest.mark.parametrize("shape", SHAPES)
def test_group_advantages(shape):
    q, g, _ = shape
    kinds = [("grpo", 1), ("grpo", 0), ("drgrpo", 1), ("rloo", 1), ("ngrpo", 1)]
    # Binary verifier rewards, then continuous ones (e.g. PNS's composite reward), as one group-major batch.
    r = np.concatenate([random_batch(q * g, q, g, 2, binary=binary)[-1] for binary in (True, False)])
    got = jit_call(lambda x: [losses.group_advantages(x, g, kind=k, std_ddof=d) for k, d in kinds], r)
    for (kind, ddof), adv in zip(kinds, got):
        np.testing.assert_allclose(adv, ref.group_adv(r, g, kind, ddof), err_msg=f"{kind} ddof={ddof}", **TOL)


def test_outcome_advantages():
    r = random_batch(0, 3, 4, 2)[-1]
    for kind in ["psr", "nsr", "w-reinforce", "sign"]:
        got = jit_call(losses.outcome_advantages, r, kind=kind, lam=0.3)
        np.testing.assert_allclose(got, ref.outcome_adv(r, kind, 0.3))


@pytest.mark.parametrize("mode", MODES)
def test_aggregate(mode):
    logp, _, _, mask, _ = random_batch(1, 3, 4, 7)
    for max_len in (None, 13):
        got = jit_call(losses.aggregate, logp, mask, mode, max_len=max_len)
        np.testing.assert_allclose(float(got.value), (ref.agg_weights(mask, mode, max_len) * logp).sum(), **TOL)


def test_kl_estimators():
    logp, _, logp_ref, _, _ = random_batch(2, 2, 3, 5)
    d = logp_ref.astype(np.float64) - logp
    for kind, expected in {"k1": -d, "k2": d * d / 2, "k3": np.exp(d) - d - 1}.items():
        np.testing.assert_allclose(jit_call(losses.kl, logp, logp_ref, kind), expected, **TOL)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES[:2])
def test_policy_loss_value_and_grad(mode, shape):
    q, g, t = shape
    logp, logp_old, logp_ref, mask, _ = random_batch(q + 10 * g, q, g, t)
    adv = np.random.default_rng(q).normal(size=q * g).astype(np.float32)
    kw = {"eps_low": 0.15, "eps_high": 0.25, "agg": mode, "logp_ref": logp_ref, "beta_kl": 0.05}
    value, grad, metrics = loss_value_and_grad(losses.policy_loss, logp, logp_old, adv, mask, **kw)
    exp_value, exp_grad = ref.surrogate_loss_and_grad(logp, logp_old, adv, mask, 0.15, 0.25, mode, logp_ref, 0.05)
    np.testing.assert_allclose(value, exp_value, **TOL)
    np.testing.assert_allclose(grad, exp_grad, **TOL)
    on = mask > 0
    ratio = np.exp(logp - logp_old)[on]
    a = np.broadcast_to(adv[:, None], mask.shape)[on]
    np.testing.assert_allclose(float(metrics["clip_frac_low"]), np.mean((ratio < 0.85) & (a < 0)), rtol=1e-6)
    np.testing.assert_allclose(float(metrics["clip_frac_high"]), np.mean((ratio > 1.25) & (a > 0)), rtol=1e-6)
    np.testing.assert_allclose(
        [metrics["ratio_min"], metrics["ratio_mean"], metrics["ratio_max"]],
        [ratio.min(), ratio.mean(), ratio.max()],
        rtol=1e-5,
    )
    d = (logp_ref - logp)[on]
    np.testing.assert_allclose(float(metrics["kl_mean"]), (np.exp(d) - d - 1).mean(), rtol=1e-4)


def test_policy_loss_per_token_advantages():
    logp, logp_old, _, mask, _ = random_batch(3, 2, 4, 6)
    adv = np.random.default_rng(3).normal(size=logp.shape).astype(np.float32)
    value, grad, _ = loss_value_and_grad(losses.policy_loss, logp, logp_old, adv, mask)
    exp_value, exp_grad = ref.surrogate_loss_and_grad(logp, logp_old, adv, mask, 0.2, 0.2, "token-mean")
    np.testing.assert_allclose(value, exp_value, **TOL)
    np.testing.assert_allclose(grad, exp_grad, **TOL)


def _expected_policy(name, logp, logp_old, mask, r, g, mode):
    """Reference advantages, mask and clip per named loss, then the shared reference surrogate."""
    eps, msk, kl_ref, beta = (0.2, 0.2), mask, None, 0.0
    if name == "grpo":
        adv = ref.group_adv(r, g, "grpo")
    elif name == "w-reinforce":
        adv = ref.outcome_adv(r, "w-reinforce", 0.1)
    elif name == "ngrpo":
        adv = ref.group_adv(r, g, "ngrpo")
        all_correct = np.repeat(r.reshape(-1, g).min(1) > 0.5, g)
        msk, eps = mask * ~all_correct[:, None], (0.16, 0.24)
    elif name == "lens":
        adv = ref.lens_adv(r, logp_old, mask, g)
    return ref.surrogate_loss_and_grad(logp, logp_old, adv, msk, *eps, mode, kl_ref, beta)


NAMES = ["grpo", "lens", "ngrpo", "w-reinforce"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", MODES)
def test_policy_losses_against_reference(name, mode):
    # One shape per (loss, mode), rotating so that each loss meets three of the four group layouts.
    q, g, t = SHAPES[(NAMES.index(name) + MODES.index(mode)) % len(SHAPES)]
    logp, logp_old, _, mask, r = random_batch(7 * q + g, q, g, t)
    value, grad, _ = loss_value_and_grad(losses.get_policy_loss(name), logp, logp_old, r, mask, g, agg=mode)
    exp_value, exp_grad = _expected_policy(name, logp, logp_old, mask, r, g, mode)
    np.testing.assert_allclose(value, exp_value, **TOL)
    np.testing.assert_allclose(grad, exp_grad, **TOL)


@pytest.mark.parametrize("shape", SHAPES)
def test_bcpg_loss_against_reference(shape):
    q, g, t = shape
    logp, logp_b, _, mask, r = random_batch(11 * q + g, q, g, t)
    rng = np.random.default_rng(q * t)
    step_ids = np.where(mask > 0, np.arange(t)[None, :] // 3, -1).astype(np.int32)
    step_correct = rng.random((q * g, -(-t // 3))) < 0.5
    kw = {"step_ids": step_ids, "step_correct": step_correct, "nsa_beta": -0.5, "tau": 0.05}
    value, grad, _ = loss_value_and_grad(losses.bcpg_loss, logp, logp_b, r, mask, g, **kw)
    weights = ref.nsa_weights(r, step_ids, step_correct, -0.5)
    exp_value, exp_grad = ref.bcpg_loss_and_grad(logp, logp_b, r, mask, g, weights, 0.05)
    np.testing.assert_allclose(value, exp_value, **TOL)
    np.testing.assert_allclose(grad, exp_grad, **TOL)
    assert np.abs(exp_grad).max() > 0


@pytest.mark.parametrize("baseline", [0.0, 0.5])
def test_topr_loss_against_reference(baseline):
    logp, logp_b, _, mask, r = random_batch(29, 3, 4, 6)
    value, grad, _ = loss_value_and_grad(losses.topr_loss, logp, logp_b, r, mask, 4, baseline=baseline, max_len=8)
    exp_value, exp_grad = ref.topr_loss_and_grad(logp, logp_b, r, mask, 8, baseline)
    np.testing.assert_allclose(value, exp_value, **TOL)
    np.testing.assert_allclose(grad, exp_grad, **TOL)


def test_rft_loss():
    for q, g, t in SHAPES:
        logp, logp_old, _, mask, r = random_batch(5 * q + g, q, g, t)
        value, grad, _ = loss_value_and_grad(losses.rft_loss, logp, logp_old, r, mask, g)
        kept = mask * (r > 0.5)[:, None]
        n = kept.sum()
        np.testing.assert_allclose(value, -(logp * kept).sum() / n if n else 0.0, **TOL)
        np.testing.assert_allclose(grad, -kept / n if n else 0 * kept, **TOL)


def test_lens_rewards():
    for q, g, t in SHAPES:
        _, logp_old, _, mask, r = random_batch(11 * q + g, q, g, t)
        logp_old = logp_old / 4  # keeps raw sequence probabilities where D_imp is the larger term
        got = jit_call(
            lambda *a, g=g: [losses.lens_rewards(*a, g, dimp_uses_pbar=flag) for flag in (True, False)],
            r,
            logp_old,
            mask,
        )
        for flag, (rt, d) in zip((True, False), got):
            exp_rt, exp_d = ref.lens_rewards(r, logp_old, mask, g, flag)
            np.testing.assert_allclose(rt, exp_rt, **TOL)
            np.testing.assert_allclose(d, exp_d, **TOL)
            assert np.all(np.asarray(rt) >= -1) and np.all(np.asarray(rt) <= 1)


def test_lens_advantages():
    for q, g, t in SHAPES:
        _, logp_old, _, mask, r = random_batch(13 * q + g, q, g, t)
        got = jit_call(losses.lens_advantages, r, logp_old, mask, g, alpha=0.5, std_ddof=0)
        np.testing.assert_allclose(got, ref.lens_adv(r, logp_old, mask, g, alpha=0.5, ddof=0), **TOL)


@pytest.mark.parametrize("kind", ["sigmoid", "ipo"])
def test_dpo_loss(kind):
    rng = np.random.default_rng(4)
    lp_c, lp_r, lr_c, lr_r = (rng.normal(-20, 5, 9).astype(np.float32) for _ in range(4))
    beta = 0.3

    def loss(a, b):
        return losses.dpo_loss(a, b, lr_c, lr_r, beta=beta, kind=kind)[0].value

    value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(jnp.asarray(lp_c), jnp.asarray(lp_r))
    h = (lp_c.astype(np.float64) - lr_c) - (lp_r - lr_r)
    if kind == "sigmoid":
        per, dh = -ref.log_sigmoid(beta * h), -beta / (1 + np.exp(beta * h))
    else:
        per, dh = (h - 1 / (2 * beta)) ** 2, 2 * (h - 1 / (2 * beta))
    np.testing.assert_allclose(float(value), per.mean(), **TOL)
    np.testing.assert_allclose(grads[0], dh / 9, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grads[1], -dh / 9, rtol=1e-4, atol=1e-6)
    _, metrics = jit_call(losses.dpo_loss, lp_c, lp_r, lr_c, lr_r, beta=beta, kind=kind)
    np.testing.assert_allclose(float(metrics["reward_accuracy"]), (h > 0).mean())
    np.testing.assert_allclose(float(metrics["reward_margin"]), beta * h.mean(), rtol=1e-4)


def test_bt_loss():
    rng = np.random.default_rng(5)
    rw, rl = rng.normal(0, 2, 11).astype(np.float32), rng.normal(0, 2, 11).astype(np.float32)
    lam = 0.05

    def loss(a, b):
        return losses.bt_loss(a, b, center_coef=lam)[0].value

    value, (gw, gl) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(rw, rl)
    x, s = rw.astype(np.float64) - rl, rw.astype(np.float64) + rl
    np.testing.assert_allclose(float(value), (-ref.log_sigmoid(x) + lam * s**2).mean(), **TOL)
    sig_neg = 1 / (1 + np.exp(x))
    np.testing.assert_allclose(gw, (-sig_neg + 2 * lam * s) / 11, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gl, (sig_neg + 2 * lam * s) / 11, rtol=1e-4, atol=1e-6)


def test_step_bce_loss():
    """BCE with logits on step-end tokens only, against numpy: value, gradient (sigmoid(s) - y over the steps) and
    accuracy; positions off the mask carry neither loss nor gradient."""
    rng = np.random.default_rng(6)
    s = rng.normal(0, 2, (3, 7)).astype(np.float32)
    y = (rng.uniform(size=(3, 7)) < 0.5).astype(np.float32)
    m = (rng.uniform(size=(3, 7)) < 0.4).astype(np.float32)
    m[0, 0] = 1.0

    value, g = jax.jit(jax.value_and_grad(lambda a: losses.step_bce_loss(a, y, m)[0].value))(s)
    x = s.astype(np.float64)
    per = -(y * ref.log_sigmoid(x) + (1 - y) * ref.log_sigmoid(-x))
    n = m.sum()
    np.testing.assert_allclose(float(value), (per * m).sum() / n, **TOL)
    np.testing.assert_allclose(g, m * (1 / (1 + np.exp(-x)) - y) / n, rtol=1e-4, atol=1e-6)
    _, metrics = jit_call(losses.step_bce_loss, s, y, m)
    np.testing.assert_allclose(float(metrics["accuracy"]), (((s > 0) == (y > 0.5)) * m).sum() / n, rtol=1e-6)
    assert float(metrics["steps"]) == n
