"""The three attention implementations (`ModelConfig.attention`) agree, in the forward pass and the gradient, on
rows with left padding (fully masked queries), grouped-query heads and a length that is not a multiple of the
block; and the blocked one holds less memory in a layer's gradient (XLA's compiled memory analysis)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nsa_jax import models
from nsa_jax.models.transformer import positions_from_mask

CFG = models.ModelConfig(
    vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, head_dim=8, qk_norm=True,
)  # fmt: skip


def _inputs(batch=3, length=37, seed=0):
    rng = np.random.default_rng(seed)
    ids = jnp.asarray(rng.integers(0, CFG.vocab_size, (batch, length)), jnp.int32)
    mask = np.ones((batch, length), np.int32)
    mask[1 % batch, :5] = 0  # left padding: those queries attend to nothing
    mask[2 % batch, :11] = 0
    return ids, jnp.asarray(mask)


def _model(impl: str, chunk: int, remat: str = "none"):
    model = models.init_model(CFG, seed=1)
    model.config = dataclasses.replace(model.config, attention=impl, attention_chunk=chunk, remat=remat)
    return model


def _loss_and_grad(model, ids, mask):
    """A fixed random projection of the valid rows' hidden states, its value, the hidden states and the gradient."""
    weights = jax.random.normal(jax.random.key(2), (*ids.shape, CFG.hidden_size))

    def loss(m):
        hidden, _ = m.forward(ids, positions_from_mask(mask), mask)
        return jnp.sum(jnp.where(mask[..., None] > 0, hidden * weights, 0.0)), hidden

    (value, hidden), grads = nnx.jit(nnx.value_and_grad(loss, has_aux=True))(model)  # jitted: eager is slow
    return value, hidden, grads


@pytest.fixture(scope="module")
def reference():
    ids, mask = _inputs()
    return ids, mask, _loss_and_grad(_model("dense", 0), ids, mask)


# 37 queries: 3 blocks of 16, the last padded; blocks inside rematerialised layers too.
@pytest.mark.parametrize(
    ("impl", "chunk", "remat"), [("chunked", 16, "none"), ("chunked", 16, "full"), ("fused", 0, "none")]
)
def test_attention_implementations_agree_with_dense(impl, chunk, remat, reference):
    ids, mask, (value, hidden, grads) = reference
    other_value, other_hidden, other_grads = _loss_and_grad(_model(impl, chunk, remat), ids, mask)
    valid = np.asarray(mask) > 0
    assert np.isfinite(np.asarray(other_hidden)).all()
    np.testing.assert_allclose(np.asarray(other_hidden)[valid], np.asarray(hidden)[valid], rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(float(other_value), float(value), rtol=1e-5)
    for (path, g), (_, h) in zip(
        jax.tree_util.tree_leaves_with_path(nnx.state(grads)),
        jax.tree_util.tree_leaves_with_path(nnx.state(other_grads)),
        strict=True,
    ):
        # Float32 sums in another order: measured relative errors of about 3e-5 for "chunked" and "fused" alike.
        g, h = np.asarray(g), np.asarray(h)
        assert np.linalg.norm(h - g) <= 2e-4 * np.linalg.norm(g), path


def test_blocked_attention_holds_less_memory_in_the_gradient():
    """A 512-token gradient through the model: blocks of 64 queries need a fraction of the dense temporaries."""
    ids, mask = _inputs(batch=2, length=512)

    def temp_bytes(impl):
        graphdef, state = nnx.split(_model(impl, 64))

        def loss(s):
            hidden, _ = nnx.merge(graphdef, s).forward(ids, positions_from_mask(mask), mask)
            return jnp.sum(hidden**2)

        return jax.jit(jax.grad(loss)).lower(state).compile().memory_analysis().temp_size_in_bytes

    dense, chunked = temp_bytes("dense"), temp_bytes("chunked")
    # Dense keeps [2 layers, B=2, H=4, 512, 512] float32 probabilities (8 MiB) for the backward pass; blocked keeps
    # q, k, v and recomputes one block at a time.
    assert chunked < 0.5 * dense, (chunked, dense)
