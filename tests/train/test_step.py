"""The pure train step: sharding and micro-batching leave the result unchanged; non-finite steps are skipped."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from helpers import random_batch, run_steps, single_device_mesh

from nsa_jax import parallel
from nsa_jax.train.sft import nll_loss


def _max_diff(a, b) -> float:
    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def test_sharded_step_equals_unsharded_on_2x2x2_mesh():
    batch = random_batch()
    ref, ref_metrics = run_steps(single_device_mesh(), [batch])
    mesh = parallel.make_mesh(2, 2, 2)
    sharded, metrics = run_steps(mesh, [batch])
    # The parameters really are split: an MLP matrix is sharded over fsdp x tensor.
    gate = sharded.params["layers"][0]["mlp"]["gate_proj"]
    assert gate.sharding.spec == jax.sharding.PartitionSpec("fsdp", "tensor")
    assert _max_diff(ref.params, sharded.params) < 1e-5
    assert _max_diff(ref.opt_state, sharded.opt_state) < 1e-5
    np.testing.assert_allclose(metrics[0]["loss"], ref_metrics[0]["loss"], rtol=1e-6)


def test_micro_batched_step_equals_full_batch():
    batches = [random_batch(seed=0), random_batch(seed=1)]
    full, full_metrics = run_steps(single_device_mesh(), batches)
    micro, micro_metrics = run_steps(single_device_mesh(), batches, micro_batches=4)
    assert _max_diff(full.params, micro.params) < 1e-5
    for a, b in zip(full_metrics, micro_metrics, strict=True):
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-6)
        np.testing.assert_allclose(a["grad_norm"], b["grad_norm"], rtol=1e-5)


def _poisoned_nll(model, batch, rng, *, chunk_size):
    """NLL times `scale` (a per-row constant): a NaN scale poisons the loss and the gradient."""
    term, metrics = nll_loss(model, batch, rng, chunk_size=chunk_size)
    return term._replace(total=term.total * batch["scale"][0]), metrics


POISONED = functools.partial(_poisoned_nll, chunk_size=16)


def test_nonfinite_step_is_skipped_and_counted():
    good = {**random_batch(), "scale": np.ones(8, np.float32)}
    bad = {**random_batch(), "scale": np.full(8, np.nan, np.float32)}
    after_good, _ = run_steps(single_device_mesh(), [good], loss_fn=POISONED)
    state, metrics = run_steps(single_device_mesh(), [good, bad, bad, good], loss_fn=POISONED)
    assert [m["skipped_nonfinite"] for m in metrics] == [0.0, 1.0, 1.0, 0.0]
    assert [int(m["nonfinite_in_a_row"]) for m in metrics] == [0, 1, 2, 0]
    assert int(state.nonfinite_total) == 2 and int(state.step) == 4
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state.params))
    after_skip, _ = run_steps(single_device_mesh(), [good, bad], loss_fn=POISONED)
    assert _max_diff(after_good.params, after_skip.params) == 0.0
    assert _max_diff(after_good.opt_state, after_skip.opt_state) == 0.0
