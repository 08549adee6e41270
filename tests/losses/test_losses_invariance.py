"""Deferred reduction: micro-batches of whole groups, summed as LossTerms, give the full-batch value and gradient;
a data-sharded jit over 8 fake CPU devices gives the unsharded value and gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from losses_testing import random_batch

from nsa_jax import losses

MODES = ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
# Every aggregation mode through two losses, and the other losses (whose group logic differs) in the default mode.
CASES = [(name, mode) for name in ("grpo", "lens") for mode in MODES] + [
    ("bcpg", None),  # BCPG and TOPR have their own aggregation (per-row means; sequence sums over L_max)
    ("topr", None),
    ("ngrpo", "token-mean"),
    ("rft", "seq-mean-token-mean"),
]


@pytest.mark.parametrize("name, mode", CASES)
def test_micro_batches_sum_to_full_batch(name, mode):
    q, g, t = 4, 3, 8
    logp, logp_old, _, mask, r = random_batch(17, q, g, t)
    fn = losses.get_policy_loss(name)
    halves = [slice(0, 2 * g), slice(2 * g, q * g)]  # two micro-batches of two whole groups each

    knobs = {} if name == "bcpg" else {"max_len": 16} if mode is None else {"agg": mode, "max_len": 16}

    def term(lp, s):
        return fn(lp, logp_old[s], r[s], mask[s], g, **knobs)[0]

    @jax.jit
    def full_and_micro(logp):
        full_value, full_grad = jax.value_and_grad(lambda lp: term(lp, slice(None)).value)(logp)
        # The training step's recipe: per-micro-batch gradients of the totals and LossTerms, summed, divided once.
        parts = [jax.grad(lambda lp, s=s: (term(lp, s).total, term(lp, s)), has_aux=True)(logp[s]) for s in halves]
        return full_value, full_grad, parts

    full_value, full_grad, parts = full_and_micro(jnp.asarray(logp))
    summed = sum(part_term for _, part_term in parts)
    np.testing.assert_allclose(float(summed.value), float(full_value), rtol=1e-5, atol=1e-7)
    micro_grad = np.concatenate([np.asarray(grad) for grad, _ in parts]) / float(summed.denom)
    np.testing.assert_allclose(micro_grad, np.asarray(full_grad), rtol=1e-5, atol=1e-8)
    assert np.abs(np.asarray(full_grad)).max() > 0  # a loss with no gradient would pass trivially


def _mesh():
    return jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Explicit,))


@pytest.mark.parametrize("name, mode", [("grpo", "seq-mean-token-mean"), ("lens", "token-mean"), ("bcpg", None)])
def test_data_sharded_jit_equals_unsharded(name, mode):
    q, g, t = 8, 2, 8
    logp, logp_old, _, mask, r = random_batch(23, q, g, t)
    fn = losses.get_policy_loss(name)

    def value_and_grad(logp, logp_old, r, mask):
        knobs = {} if mode is None else {"agg": mode}
        return jax.value_and_grad(lambda lp: fn(lp, logp_old, r, mask, g, **knobs)[0].value)(logp)

    ref_value, ref_grad = jax.jit(value_and_grad)(logp, logp_old, r, mask)
    mesh = _mesh()
    rows = NamedSharding(mesh, P("data"))
    with jax.set_mesh(mesh):
        args = [jax.device_put(x, rows) for x in (logp, logp_old, r, mask)]
        value, grad = jax.jit(value_and_grad)(*args)
        assert len(args[0].sharding.device_set) == 8
    # Per-token losses are O(1) and cancel in the mean, so compare on that scale.
    np.testing.assert_allclose(float(value), float(ref_value), rtol=1e-5, atol=1e-7)
    assert np.abs(np.asarray(ref_grad)).max() > 0
    np.testing.assert_allclose(np.asarray(grad), np.asarray(ref_grad), rtol=1e-5, atol=1e-8)
