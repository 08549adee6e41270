"""The logical-axis table: specs from names, divisibility fallback, sharded forward equals unsharded."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from nsa_jax import models, parallel


def test_mesh_shape_fills_minus_one_and_rejects_bad_sizes():
    assert parallel.mesh_shape((2, -1, 2), 8) == (2, 2, 2)
    assert parallel.mesh_shape((1, -1, 1), 8) == (1, 8, 1)
    with pytest.raises(ValueError, match="do not divide"):
        parallel.mesh_shape((3, -1, 1), 8)
    with pytest.raises(ValueError, match="use 4 devices"):
        parallel.mesh_shape((2, 2, 1), 8)


def test_logical_to_spec_uses_table_and_replicates_indivisible_dims():
    mesh = parallel.make_mesh(data=1, fsdp=2, tensor=4)
    assert parallel.logical_to_spec(("embed", "heads", "head_dim"), (128, 8, 32), mesh) == P("fsdp", "tensor", None)
    # 2 KV heads cannot be split 4 ways: replicated, not an error.
    assert parallel.logical_to_spec(("embed", "kv_heads", "head_dim"), (128, 2, 32), mesh) == P("fsdp", None, None)
    # A mesh axis is used once per array: vocab takes "tensor", embed "fsdp".
    assert parallel.logical_to_spec(("vocab", "embed"), (96, 128), mesh) == P("tensor", "fsdp")


def test_sharded_forward_equals_unsharded():
    model = models.init_model(models.ModelConfig(num_hidden_layers=2, vocab_size=96), seed=1)
    ids = jnp.asarray(np.random.RandomState(0).randint(1, 96, (8, 12)), jnp.int32)
    mask = jnp.ones_like(ids).at[0, :3].set(0)
    ref = np.asarray(model(ids, attention_mask=mask))
    mesh = parallel.make_mesh(data=2, fsdp=2, tensor=2)
    parallel.shard_model(model, mesh)
    assert model.layers[0].mlp.gate_proj[...].sharding.spec == P("fsdp", "tensor")
    sharding = parallel.batch_sharding(mesh)
    out = jax.jit(lambda i, m: model(i, attention_mask=m))(
        jax.device_put(ids, sharding), jax.device_put(mask, sharding)
    )
    assert out.sharding.spec[0] == ("data", "fsdp")
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-5)


def test_parameters_replicated_against_their_rule_are_named():
    """vocab 62 and 2 KV heads do not divide tensor=4, so those dimensions stay replicated: the report names
    each one with both sizes; the hidden size 32 splits over fsdp=2 and is not reported."""
    cfg = models.ModelConfig(
        vocab_size=62,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        tie_word_embeddings=True,
    )
    lines = parallel.replicated_against_rules(models.init_model(cfg, seed=0), parallel.make_mesh(1, 2, 4))
    assert any("vocab=62 over tensor=4" in line for line in lines), lines
    assert any("k_proj" in line and "kv_heads=2 over tensor=4" in line for line in lines), lines
    assert not any("embed=" in line or "mlp=" in line or "heads=4" in line for line in lines), lines
    assert parallel.replicated_against_rules(models.init_model(cfg, seed=0), parallel.make_mesh(1, 8, 1)) == []


@pytest.mark.parametrize(
    ("rows", "dims", "spec"),
    [
        (8, (2, 1, 4), P("data", None, "fsdp")),  # one row per device: every axis follows the rows
        (16, (4, 4), P("data", None)),  # half a group per device: gathered over fsdp, split over data
        (16, (8, 2), P(("data", "fsdp"), None)),  # whole groups of 2 per device: no gather
        (16, (2, 1, 8), P("data", None, "fsdp")),
    ],
)
def test_split_rows_on_an_explicit_mesh_keeps_values_and_splits_what_it_can(rows, dims, spec):
    mesh = jax.make_mesh((2, 4, 1), parallel.MESH_AXES, axis_types=(jax.sharding.AxisType.Explicit,) * 3)
    x = np.arange(rows * 3, dtype=np.float32).reshape(rows, 3)
    with jax.set_mesh(mesh):
        sharded = jax.device_put(x, jax.sharding.NamedSharding(mesh, P(("data", "fsdp"), None)))
        out = jax.jit(lambda a: parallel.split_rows(a, dims))(sharded)
    assert out.sharding.spec == P(*spec, None)
    np.testing.assert_array_equal(np.asarray(out), x.reshape(*dims, 3))
    np.testing.assert_array_equal(np.asarray(parallel.split_rows(jnp.asarray(x), dims)), x.reshape(*dims, 3))
