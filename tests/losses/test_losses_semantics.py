"""What the methods are for: LENS learns from all-wrong groups where GRPO cannot; NSA's beta interpolates between
BCPG (beta = 1) and dropping the mined steps from the negative term (beta = 0); registry and metric behaviour."""

import jax
import jax.numpy as jnp
import losses_reference as ref
import numpy as np
from losses_testing import jit_call, loss_value_and_grad, random_batch

from nsa_jax import losses


def test_lens_learns_from_all_wrong_group_where_grpo_does_not():
    q, g, t = 2, 4, 6
    logp, logp_old, _, mask, _ = random_batch(31, q, g, t)
    mask[:, :2] = 1.0
    r = np.array([0, 0, 0, 0, 1, 0, 1, 0], np.float32)  # group 0 all wrong, group 1 mixed
    _, grpo_grad, grpo_metrics = loss_value_and_grad(losses.grpo_loss, logp, logp_old, r, mask, g)
    _, lens_grad, _ = loss_value_and_grad(losses.lens_loss, logp, logp_old, r, mask, g)
    assert np.all(grpo_grad[:g] == 0.0)  # exactly zero, not merely small
    assert np.abs(grpo_grad[g:]).max() > 0
    assert np.abs(lens_grad[:g]).max() > 1e-4
    assert float(grpo_metrics["all_wrong_frac"]) == 0.5


def test_lens_penalises_confident_wrong_answers_more():
    g = 6
    conf = np.linspace(-2.0, -0.05, g, dtype=np.float32)  # mean token log-prob, rising confidence
    logp_old = np.repeat(conf[:, None], 4, axis=1)
    for rewards in ([0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]):
        rt, _ = jit_call(losses.lens_rewards, np.array(rewards, np.float32), logp_old, np.ones_like(logp_old), g)
        wrong = np.asarray(rt)[np.array(rewards) == 0]
        assert np.all(np.diff(wrong) < 0) and np.all(wrong < 0) and np.all(wrong >= -1)


def test_lens_weight_function():
    z = np.linspace(0.01, 0.99, 50)
    w = np.asarray(losses.lens_weight(z))
    assert np.all(w > 0) and np.all(np.diff(w) > 0)
    np.testing.assert_allclose(float(losses.lens_weight(1e-3)), 1e-3 / 2, rtol=2e-3)  # w(z) = z/2 + O(z^2)


def _nsa_batch(seed):
    q, g, t, k = 3, 4, 10, 4
    logp, logp_old, _, mask, r = random_batch(seed, q, g, t)
    rng = np.random.default_rng(seed)
    step_ids = np.where(mask > 0, np.minimum(np.arange(t) // 3, k - 1)[None, :], -1).astype(np.int32)
    step_correct = rng.random((q * g, k)) < 0.5
    return logp, logp_old, r, mask, g, step_ids, step_correct


def test_nsa_beta_one_is_bcpg():
    logp, logp_old, r, mask, g, step_ids, step_correct = _nsa_batch(41)
    plain_value, plain_grad, _ = loss_value_and_grad(losses.bcpg_loss, logp, logp_old, r, mask, g)
    nsa_value, nsa_grad, metrics = loss_value_and_grad(
        losses.bcpg_loss, logp, logp_old, r, mask, g, step_ids=step_ids, step_correct=step_correct, nsa_beta=1.0
    )
    np.testing.assert_allclose(nsa_value, plain_value, rtol=1e-6)
    np.testing.assert_allclose(nsa_grad, plain_grad, rtol=1e-6)
    mined = ref.nsa_weights(r, step_ids, step_correct, 0.0) == 0
    wrong_tokens = mask * (r < 0.5)[:, None]
    assert mined.sum() > 0
    np.testing.assert_allclose(float(metrics["nsa_mined_frac"].value), (mined * mask).sum() / wrong_tokens.sum())


def test_nsa_beta_zero_removes_mined_tokens_from_negative_term():
    logp, logp_old, r, mask, g, step_ids, step_correct = _nsa_batch(43)
    mined = ref.nsa_weights(r, step_ids, step_correct, 0.0) == 0
    steps = {"step_ids": step_ids, "step_correct": step_correct}
    # Without the behaviour constraint, beta = 0 is BCPG with the mined tokens' gradient cut, denominators unchanged.
    _, plain_grad, _ = loss_value_and_grad(losses.bcpg_loss, logp, logp_old, r, mask, g, tau=0.0)
    _, zero_grad, _ = loss_value_and_grad(losses.bcpg_loss, logp, logp_old, r, mask, g, tau=0.0, nsa_beta=0.0, **steps)
    assert np.all(zero_grad[mined] == 0.0) and np.abs(plain_grad[mined]).max() > 0
    np.testing.assert_allclose(zero_grad, np.where(mined, 0.0, plain_grad), rtol=1e-6, atol=1e-9)
    # With it, only the constraint's gradient remains on mined tokens: tau * S_i / |y_i| / N, S_i the row's sequence
    # log-ratio to the behaviour policy, N the rows with tokens.
    tau = 1e-2
    _, grad, _ = loss_value_and_grad(losses.bcpg_loss, logp, logp_old, r, mask, g, tau=tau, nsa_beta=0.0, **steps)
    lengths = mask.sum(axis=1)
    seq = (mask * (logp.astype(np.float64) - logp_old)).sum(axis=1)
    want = tau * seq / np.maximum(lengths, 1) / (lengths > 0).sum()
    np.testing.assert_allclose(grad[mined], np.broadcast_to(want[:, None], grad.shape)[mined], rtol=1e-4, atol=1e-9)


def test_nsa_negative_beta_rewards_mined_steps():
    logp, logp_old, r, mask, g, step_ids, step_correct = _nsa_batch(47)
    logp = logp_old.copy()  # with tau = 0 the gradient on a token is -w_t A_i / (|y_i| N): its sign follows w_t
    steps = {"step_ids": step_ids, "step_correct": step_correct}
    _, plus, _ = loss_value_and_grad(losses.bcpg_loss, logp, logp_old, r, mask, g, tau=0.0, nsa_beta=0.5, **steps)
    _, minus, _ = loss_value_and_grad(losses.bcpg_loss, logp, logp_old, r, mask, g, tau=0.0, nsa_beta=-0.5, **steps)
    mined = (ref.nsa_weights(r, step_ids, step_correct, 0.0) == 0) & (mask > 0)
    np.testing.assert_allclose(minus[mined], -plus[mined], rtol=1e-6)
    assert np.all(minus[mined] < 0)  # descending the loss raises the log-prob of mined correct steps


def test_ngrpo_drops_all_correct_groups():
    logp, logp_old, _, mask, _ = random_batch(53, 2, 4, 6)
    r = np.array([1, 1, 1, 1, 0, 1, 0, 0], np.float32)
    _, grad, metrics = loss_value_and_grad(losses.ngrpo_loss, logp, logp_old, r, mask, 4)
    assert float(metrics["tokens"]) == mask[4:].sum()
    assert np.all(grad[:4] == 0.0) and np.abs(grad[4:]).max() > 0


def test_rft_ignores_wrong_responses():
    logp, logp_old, _, mask, _ = random_batch(59, 2, 3, 6)
    r = np.array([1, 0, 0, 0, 1, 0], np.float32)
    _, grad, metrics = loss_value_and_grad(losses.rft_loss, logp, logp_old, r, mask, 3)
    assert np.all(grad[r == 0] == 0.0)
    np.testing.assert_allclose(float(metrics["kept_frac"]), 2 / 6, rtol=1e-6)


def test_drgrpo_preset_uses_its_aggregation():
    logp, logp_old, _, mask, r = random_batch(67, 2, 4, 6)
    value, _, _ = loss_value_and_grad(losses.get_policy_loss("drgrpo"), logp, logp_old, r, mask, 4, max_len=11)
    expected, _ = ref.surrogate_loss_and_grad(
        logp, logp_old, ref.group_adv(r, 4, "drgrpo"), mask, 0.2, 0.2, "token-mean"
    )
    # token-mean reference rescaled to sum / (B * L_max)
    np.testing.assert_allclose(value, expected * mask.sum() / (8 * 11), rtol=1e-5)


def test_sharded_metrics_are_plain_scalars():
    logp, logp_old, _, mask, r = random_batch(71, 2, 4, 6)
    _, metrics = jax.jit(lambda *a: losses.lens_loss(*a, 4))(logp, logp_old, r, mask)
    assert all(jnp.shape(v) == () and v.dtype == jnp.float32 for v in metrics.values())
    assert {"lens_d_mean", "lens_d_min", "lens_d_max", "adv_mean", "adv_std", "kl_mean"} <= set(metrics)
