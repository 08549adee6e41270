"""token_logprobs on a mesh with Explicit axes (jax.make_mesh's default: shardings are part of the array types):
value and gradients equal the unsharded, unchunked log-softmax's, and each gradient lies like its input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding

from nsa_jax import losses, parallel

TEMPERATURE = 0.7


def _unchunked(hidden, unembed, targets):
    logits = jnp.einsum("btd,dv->btv", hidden, unembed) / TEMPERATURE
    return jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), targets[..., None], axis=-1)[..., 0]


def _value_and_grads(fn, hidden, unembed, targets, weights):
    """fn(hidden, unembed, targets) and the gradients of sum(weights * fn), weights [B, T] a downstream cotangent."""

    def scalar(h, w, y, c):
        return jnp.sum(c * fn(h, w, y))

    grads = jax.jit(jax.grad(scalar, argnums=(0, 1)))(hidden, unembed, targets, weights)
    return jax.jit(fn)(hidden, unembed, targets), grads


# B = 8 rows of T = 6: chunk 4 does not divide a device's 2*6 = 12 rows, 5 does not divide B*T either.
@pytest.mark.parametrize(("shape", "chunk_size"), [((2, 2, 2), 4), ((2, 2, 2), 5), ((1, 2, 4), 64)])
def test_explicit_mesh_equals_unsharded(shape, chunk_size):
    b, t, d, v = 8, 6, 16, 40
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    hidden = jax.random.normal(k1, (b, t, d))
    unembed = jax.random.normal(k2, (d, v)) / np.sqrt(d)
    targets = jax.random.randint(k3, (b, t), 0, v)
    weights = jnp.linspace(-1.0, 2.0, b * t).reshape(b, t)
    ref_value, (ref_dh, ref_dw) = _value_and_grads(_unchunked, hidden, unembed, targets, weights)

    mesh = jax.make_mesh(shape, parallel.MESH_AXES, axis_types=(AxisType.Explicit,) * 3)
    with jax.set_mesh(mesh):
        batch = parallel.batch_sharding(mesh)
        weight = NamedSharding(mesh, parallel.logical_to_spec(("embed", "vocab"), unembed.shape, mesh))
        args = jax.device_put(hidden, parallel.batch_sharding(mesh, 3)), jax.device_put(unembed, weight)
        chunked = functools.partial(losses.token_logprobs, chunk_size=chunk_size, temperature=TEMPERATURE)
        value, (dh, dw) = _value_and_grads(chunked, *args, *jax.device_put((targets, weights), batch))

    assert value.sharding.spec == batch.spec
    assert dh.sharding.spec == args[0].sharding.spec and dw.sharding.spec == weight.spec
    np.testing.assert_allclose(value, ref_value, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dh, ref_dh, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-4, atol=1e-5)
