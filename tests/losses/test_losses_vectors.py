"""Every test vector of ALGORITHMS.md, computed by the library."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nsa_jax import losses

ONE_CORRECT = jnp.array([1.0] + [0.0] * 7)
MEAN_TOKEN_LOGP = [-0.10, -0.20, -0.05, -0.50]


def _close(actual, expected, atol=2e-6):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=0, atol=atol)


@pytest.mark.parametrize(
    "kind, ddof, expected",
    [
        ("grpo", 1, [2.474867] + [-0.353552] * 7),
        ("grpo", 0, [2.645743] + [-0.377963] * 7),
        ("drgrpo", 1, [0.875] + [-0.125] * 7),
        ("ngrpo", 1, [1.763830] + [-0.503951] * 7),
    ],
)
def test_group_advantage_vectors(kind, ddof, expected):
    _close(losses.group_advantages(ONE_CORRECT, 8, kind=kind, std_ddof=ddof), expected)


def test_ngrpo_all_wrong_vector():
    _close(losses.group_advantages(jnp.zeros(8), 8, kind="ngrpo"), [-0.333332] * 8)


def test_w_reinforce_vector():
    _close(losses.outcome_advantages(jnp.array([1.0, 0.0, 1.0, 0.0]), kind="w-reinforce"), [0.1, -1, 0.1, -1])


def _lens_inputs(rewards):
    # Constant per-token log-probs over 3 tokens give exactly the stated mean token log-prob.
    logp_old = jnp.array(MEAN_TOKEN_LOGP)[:, None] * jnp.ones((4, 3))
    return jnp.array(rewards), logp_old, jnp.ones((4, 3))


@pytest.mark.parametrize(
    "rewards, d, rt, adv",
    [
        (
            [1.0, 0.0, 0.0, 0.0],
            3.619350,
            [1, -0.073085, -0.089129, -0.050329],
            [1.499335, -0.503955, -0.533907, -0.461473],
        ),
        (
            [0.0, 0.0, 0.0, 0.0],
            1.902459,
            [-0.226749, -0.188869, -0.25, -0.117007],
            [-0.007773, 0.001697, -0.013586, 0.019662],
        ),
    ],
)
def test_lens_vectors(rewards, d, rt, adv):
    r, logp_old, mask = _lens_inputs(rewards)
    rt_got, d_got = losses.lens_rewards(r, logp_old, mask, 4)
    _close(d_got, [d] * 4, atol=2e-6)
    _close(rt_got, rt, atol=2e-6)
    _close(losses.lens_advantages(r, logp_old, mask, 4), adv, atol=3e-6)


def test_lens_weight_vector():
    _close(losses.lens_weight(0.5), 0.386294)


def test_nsa_token_weight_vector():
    weights = losses.nsa_token_weights(
        jnp.array([0.0]), jnp.array([[-1, 0, 0, 1, 1, 2]]), jnp.array([[True, False, True]]), 0.5
    )
    _close(weights, [[1, 0.5, 0.5, 1, 1, 0.5]], atol=0)


def test_bcpg_eq6_vector():
    """ALGORITHMS.md 3.4: G=2, r=[1,0], NSA weights [[1,1,1],[0.5,0.5,1]] (step 0 of the wrong row mined)."""
    logp = jnp.array([[-1.0, -1.0, -1.0], [-2.0, -2.0, -2.0]])
    logp_b = jnp.array([[-1.1, -1.0, -1.0], [-2.0, -2.0, -1.8]])
    steps = {"step_ids": jnp.array([[0, 0, 0], [0, 0, 1]]), "step_correct": jnp.array([[False, False], [True, False]])}
    r, mask = jnp.array([1.0, 0.0]), jnp.ones((2, 3))

    def value(lp):
        return losses.bcpg_loss(lp, logp_b, r, mask, 2, nsa_beta=0.5, tau=1e-3, **steps)[0].value

    _close(value(logp), -0.08332917, atol=1e-7)
    _close(jax.grad(value)(logp), [[-0.08331667] * 3, [0.04163333, 0.04163333, 0.08330000]], atol=1e-7)
    term = losses.bcpg_loss(logp, logp_b, r, mask, 2, nsa_beta=0.5, tau=1e-3, **steps)[0]
    _close(term.total, -(-0.50000167 + 0.66666000), atol=1e-7)  # -sum_i v_i
    _close(term.denom, 2.0, atol=0)


def test_topr_weight_vector():
    """ALGORITHMS.md 1: r=[1,0,0], per-token logp - logp_b [0,0], [0.5,0.5], [-1,-1] -> weights [1, 1, 0.135335]:
    read off the gradient, -w_i R_i / (B * L_max) on every token."""
    logp = jnp.zeros((3, 2))
    logp_b = -jnp.array([[0.0, 0.0], [0.5, 0.5], [-1.0, -1.0]])
    r, mask = jnp.array([1.0, 0.0, 0.0]), jnp.ones((3, 2))
    grad = jax.grad(lambda lp: losses.topr_loss(lp, logp_b, r, mask, 1)[0].value)(logp)
    weights = -np.asarray(grad)[:, 0] * 3 * 2 / np.array([1.0, -1.0, -1.0])
    _close(weights, [1.0, 1.0, 0.135335], atol=1e-6)
