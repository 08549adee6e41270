"""token_logprobs against the unchunked log-softmax: values and gradients, chunk sizes that do and do not divide
B*T, temperature, bfloat16; and a compiled-memory check that the chunked gradient never holds the f32 logits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nsa_jax import losses


def _unchunked(hidden, unembed, targets, temperature):
    logits = jnp.einsum("btd,dv->btv", hidden.astype(jnp.float32), unembed.astype(jnp.float32)) / temperature
    return jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), targets[..., None], axis=-1)[..., 0]


def _inputs(b=3, t=5, d=8, v=37, dtype=jnp.float32, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    hidden = jax.random.normal(k1, (b, t, d)).astype(dtype)
    unembed = (jax.random.normal(k2, (d, v)) / np.sqrt(d)).astype(dtype)
    return hidden, unembed, jax.random.randint(k3, (b, t), 0, v)


def _value_and_grads(fn, hidden, unembed, targets):
    weights = jnp.linspace(-1.0, 2.0, targets.size).reshape(targets.shape)  # an arbitrary downstream cotangent

    def scalar(h, w):
        return jnp.sum(weights * fn(h, w, targets))

    return jax.jit(fn)(hidden, unembed, targets), jax.jit(jax.grad(scalar, argnums=(0, 1)))(hidden, unembed)


# B*T = 15: 5 divides it, 4 does not, 64 exceeds it. V = 37 is one backward slice (slices are whole multiples of
# 128 columns); V = 300 is three (128, 128, and the last shifted left to end at V, overlapping the second by 84).
@pytest.mark.parametrize("chunk_size, temperature", [(4, 0.6), (5, 1.0), (64, 1.0)])
@pytest.mark.parametrize("vocab", [37, 300])
def test_matches_unchunked_values_and_grads(chunk_size, temperature, vocab):
    hidden, unembed, targets = _inputs(v=vocab)
    value, (dh, dw) = _value_and_grads(
        lambda h, w, y: losses.token_logprobs(h, w, y, chunk_size=chunk_size, temperature=temperature),
        hidden,
        unembed,
        targets,
    )
    ref_value, (ref_dh, ref_dw) = _value_and_grads(
        lambda h, w, y: _unchunked(h, w, y, temperature), hidden, unembed, targets
    )
    assert value.shape == targets.shape and value.dtype == jnp.float32
    np.testing.assert_allclose(value, ref_value, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dh, ref_dh, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-4, atol=1e-5)


def test_bfloat16_inputs_give_float32_logprobs_and_input_dtype_grads():
    hidden, unembed, targets = _inputs(dtype=jnp.bfloat16, v=300)
    value, (dh, dw) = _value_and_grads(
        lambda h, w, y: losses.token_logprobs(h, w, y, chunk_size=4), hidden, unembed, targets
    )
    ref_value, (ref_dh, ref_dw) = _value_and_grads(lambda h, w, y: _unchunked(h, w, y, 1.0), hidden, unembed, targets)
    assert value.dtype == jnp.float32 and dh.dtype == jnp.bfloat16 and dw.dtype == jnp.bfloat16
    np.testing.assert_allclose(value, ref_value, rtol=1e-5, atol=1e-5)  # same bf16 inputs, f32 maths
    # One bf16 rounding of each gradient entry, nothing accumulated across chunks in bf16.
    np.testing.assert_allclose(np.asarray(dh, np.float32), np.asarray(ref_dh, np.float32), rtol=1e-2, atol=1e-3)
    np.testing.assert_allclose(np.asarray(dw, np.float32), np.asarray(ref_dw, np.float32), rtol=1e-2, atol=1e-3)


def test_rejects_a_non_positive_chunk_size():
    hidden, unembed, targets = _inputs()
    with pytest.raises(ValueError, match="chunk_size=0"):
        losses.token_logprobs(hidden, unembed, targets, chunk_size=0)


def test_compiled_temp_memory_stays_far_below_the_f32_logits():
    b, t, d, v = 4, 256, 64, 8192  # f32 logits: 32 MiB
    args = (
        jax.ShapeDtypeStruct((b, t, d), jnp.bfloat16),
        jax.ShapeDtypeStruct((d, v), jnp.bfloat16),
        jax.ShapeDtypeStruct((b, t), jnp.int32),
    )
    logits_bytes = b * t * v * 4

    def loss(h, w, y):
        return jnp.sum(losses.token_logprobs(h, w, y, chunk_size=32))

    def temp_bytes(fn):
        return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes

    chunked = temp_bytes(jax.value_and_grad(loss, argnums=(0, 1)))
    naive = temp_bytes(jax.value_and_grad(lambda h, w, y: jnp.sum(_unchunked(h, w, y, 1.0)), argnums=(0, 1)))
    assert naive >= logits_bytes  # the measurement does see a full set of logits when there is one
    assert chunked < logits_bytes / 8
