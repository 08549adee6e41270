"""The model on a mesh with Explicit axes (jax.make_mesh's default; shardings are part of the array types): logits
and gradients equal the unsharded model's."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P

from nsa_jax import models, parallel

# One per family, each with the parameters that family adds: llama with MLP biases and an untied lm_head, qwen2's
# q/k/v biases, qwen3's q/k norms.
FAMILIES = {
    "llama": {"mlp_bias": True, "tie_word_embeddings": False},
    "qwen2": {"attention_bias": True},
    "qwen3": {"qk_norm": True},
}


def _config(family: str) -> models.ModelConfig:
    return models.ModelConfig(model_type=family, vocab_size=96, num_hidden_layers=2, **FAMILIES[family])


def _inputs():
    ids = jnp.asarray(np.random.RandomState(0).randint(3, 96, (8, 12)), jnp.int32)
    mask = jnp.ones_like(ids).at[0, :3].set(0).at[5, -2:].set(0)  # a left- and a right-padded row
    return ids, mask


def _explicit_mesh(shape):
    return jax.make_mesh(shape, parallel.MESH_AXES, axis_types=(AxisType.Explicit,) * 3)


def _loss(params, graphdef, ids, mask):
    """Masked next-token cross-entropy, written without slicing the vocabulary axis (split over "tensor")."""
    logits = nnx.merge(graphdef, params)(ids, attention_mask=mask)
    targets = jnp.roll(ids, -1, axis=1)[..., None] == jnp.arange(logits.shape[-1])
    weight = mask.at[:, -1].set(0)
    logp = jnp.sum(jax.nn.log_softmax(logits) * targets, axis=-1)
    return -jnp.sum(logp * weight) / jnp.sum(weight)


@pytest.mark.parametrize(
    ("family", "shape"),
    [("llama", (2, 2, 2)), ("qwen2", (2, 2, 2)), ("qwen3", (2, 2, 2)), ("llama", (1, 2, 4))],
    ids=["llama", "qwen2", "qwen3", "llama-tensor4"],  # tensor4: 2 KV heads cannot be split 4 ways
)
def test_logits_on_explicit_mesh_equal_unsharded(family, shape):
    ids, mask = _inputs()
    model = models.init_model(_config(family), seed=1)
    ref = np.asarray(jax.jit(lambda m: m(ids, attention_mask=mask))(model))
    mesh = _explicit_mesh(shape)
    with jax.set_mesh(mesh):
        parallel.shard_model(model, mesh)
        assert jax.typeof(model.layers[0].mlp.gate_proj[...]).sharding.spec == P("fsdp", "tensor")
        batch = parallel.batch_sharding(mesh)
        out = jax.jit(lambda m, i, a: m(i, attention_mask=a))(
            model, jax.device_put(ids, batch), jax.device_put(mask, batch)
        )
    assert jax.typeof(out).sharding.spec == P(batch.spec[0], None, "tensor")
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-5)


def test_gradients_on_explicit_mesh_equal_unsharded():
    ids, mask = _inputs()
    model = models.init_model(_config("llama").replace(remat="full"), seed=1)
    grad = jax.jit(jax.value_and_grad(_loss), static_argnums=1)
    ref_loss, ref_grads = grad(*reversed(nnx.split(model, nnx.Param)), ids, mask)
    mesh = _explicit_mesh((2, 2, 2))
    with jax.set_mesh(mesh):
        graphdef, params = nnx.split(parallel.shard_model(model, mesh), nnx.Param)
        batch = parallel.batch_sharding(mesh)
        loss, grads = grad(params, graphdef, jax.device_put(ids, batch), jax.device_put(mask, batch))
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-6)
    ref_flat, param_flat = dict(nnx.to_flat_state(ref_grads)), dict(nnx.to_flat_state(params))
    for path, g in nnx.to_flat_state(grads):
        assert g[...].sharding.spec == param_flat[path][...].sharding.spec, path  # each gradient lies like its param
        np.testing.assert_allclose(np.asarray(g[...]), np.asarray(ref_flat[path][...]), atol=1e-5)
