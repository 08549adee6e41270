"""The contract around the maths: LossTerm arithmetic, named errors for bad knobs, dtypes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from losses_testing import jit_call, random_batch

from nsa_jax import losses


def test_lossterm_is_a_pytree_that_sums_and_divides_once():
    a = losses.LossTerm(jnp.float32(3.0), jnp.float32(4.0))
    b = losses.LossTerm(jnp.float32(5.0), jnp.float32(4.0))
    assert len(jax.tree_util.tree_leaves(a)) == 2
    total = sum([a, b])
    assert float(total.value) == 1.0  # (3 + 5) / (4 + 4), not the mean of 0.75 and 1.25
    doubled = jax.jit(lambda t: jax.tree_util.tree_map(lambda x: 2 * x, t))(a)
    assert isinstance(doubled, losses.LossTerm) and float(doubled.total) == 6.0


def test_lossterm_with_zero_denominator_is_zero_with_finite_gradient():
    grad = jax.grad(lambda x: losses.LossTerm(x * 2.0, jnp.float32(0.0)).value)(jnp.float32(1.0))
    assert float(losses.LossTerm(jnp.float32(1.0), jnp.float32(0.0)).value) == 0.0
    assert float(grad) == 0.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x, m, r: losses.aggregate(x, m, "mean"), "agg='mean'"),
        (lambda x, m, r: losses.group_advantages(r, 4, kind="ppo"), "kind='ppo'"),
        (lambda x, m, r: losses.outcome_advantages(r, kind="nrs"), "kind='nrs'"),
        (lambda x, m, r: losses.kl(x, x, "k4"), "kl_kind='k4'"),
        (lambda x, m, r: losses.dpo_loss(r, r, r, r, kind="kto"), "kind='kto'"),
        (lambda x, m, r: losses.get_policy_loss("ppo"), "loss='ppo'"),
        (lambda x, m, r: losses.bcpg_loss(x, x, r, m, 4, nsa_beta=1.5), "nsa_beta=1.5"),
        (lambda x, m, r: losses.group_advantages(r, 3), "group_size=3"),
        (lambda x, m, r: losses.aggregate(x, m, "seq-mean-token-sum-norm", max_len=0), "max_len=0"),
    ],
)
def test_bad_knobs_raise_value_errors_that_name_them(call, message):
    logp, _, _, mask, r = random_batch(0, 2, 4, 5)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call(logp, mask, r)


def test_bfloat16_inputs_use_float32_maths():
    logp, logp_old, logp_ref, mask, r = random_batch(3, 2, 4, 6)
    bf16 = [jnp.asarray(x, jnp.bfloat16) for x in (logp, logp_old, logp_ref)]
    term32, _ = jit_call(losses.grpo_loss, logp, logp_old, r, mask, 4, logp_ref=logp_ref, beta_kl=0.1)
    term16, metrics = jit_call(losses.grpo_loss, bf16[0], bf16[1], r, mask, 4, logp_ref=bf16[2], beta_kl=0.1)
    assert term16.total.dtype == jnp.float32 and all(v.dtype == jnp.float32 for v in metrics.values())
    # Only the inputs are rounded to bf16 (3 significant digits); the arithmetic is float32.
    np.testing.assert_allclose(float(term16.value), float(term32.value), rtol=0.05, atol=5e-3)
    grad = jax.jit(jax.grad(lambda lp: losses.grpo_loss(lp, bf16[1], r, mask, 4)[0].value))(bf16[0])
    assert grad.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(grad.astype(jnp.float32))))


def test_only_logp_is_differentiated():
    logp, logp_old, logp_ref, mask, r = random_batch(5, 2, 4, 6)

    def value(lp_old, lp_ref):
        return losses.grpo_loss(logp, lp_old, r, mask, 4, logp_ref=lp_ref, beta_kl=0.1)[0].value

    d_old, d_ref = jax.jit(jax.grad(value, argnums=(0, 1)))(logp_old, logp_ref)
    assert not np.any(np.asarray(d_old)) and not np.any(np.asarray(d_ref))
