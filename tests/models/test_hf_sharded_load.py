"""Loading straight into shardings on a (2, 4) mesh of fake CPU devices gives the same model, already placed."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import nnx
from hf_reference import max_diff_on_real, nsa_logits, padded_batch
from jax.sharding import NamedSharding, PartitionSpec

from nsa_jax import models

# A local stand-in for the project's logical-axis rules: which mesh axis each logical axis is split over.
RULES = {"embed": "fsdp", "heads": "tensor", "kv_heads": "tensor", "mlp": "tensor", "vocab": "tensor"}


def rule_shardings(mesh: jax.sharding.Mesh):
    """(path, abstract param) -> NamedSharding: split an axis by its rule when divisible and the mesh axis is free."""

    def sharding(path, var) -> NamedSharding:
        spec, used = [], set()
        for axis, size in zip(var.get_metadata()["axes"], var.get_value().shape, strict=True):
            mesh_axis = RULES.get(axis)
            ok = mesh_axis is not None and mesh_axis not in used and size % mesh.shape[mesh_axis] == 0
            spec.append(mesh_axis if ok else None)
            used.add(mesh_axis if ok else None)
        return NamedSharding(mesh, PartitionSpec(*spec))

    return sharding


def _as_state(rule, model) -> nnx.State:
    """The same placement given as an nnx.State of Shardings (the form a whole-model sharding table takes)."""
    params = nnx.state(model, nnx.Param)
    flat = [(path, rule(path, var)) for path, var in nnx.to_flat_state(params)]
    return nnx.from_flat_state(flat)


@pytest.mark.parametrize("form", ["callable", "state"])
@pytest.mark.parametrize("axis_type", ["Explicit", "Auto"])
def test_sharded_load_places_params_and_keeps_values(checkpoint, axis_type, form):
    mesh = jax.make_mesh((2, 4), ("fsdp", "tensor"), axis_types=(getattr(jax.sharding.AxisType, axis_type),) * 2)
    rule = rule_shardings(mesh)
    shardings = rule if form == "callable" else _as_state(rule, models.from_pretrained(checkpoint.single))
    model = models.from_pretrained(checkpoint.sharded, shardings=shardings)
    reference = dict(nnx.to_flat_state(nnx.state(models.from_pretrained(checkpoint.sharded), nnx.Param)))
    split = 0
    for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        value, expected = var.get_value(), rule(path, var)
        assert value.sharding.is_equivalent_to(expected, value.ndim), path
        assert all(shard.data.shape == expected.shard_shape(value.shape) for shard in value.addressable_shards)
        np.testing.assert_array_equal(np.asarray(value), np.asarray(reference[path].get_value()))
        split += any(expected.spec)
    assert split >= 10


# Compiling for 8 fake devices on 2 cores is slow: one family by default, all with --runslow.
@pytest.mark.parametrize(
    "checkpoint",
    ["qwen3", pytest.param("llama", marks=pytest.mark.slow), pytest.param("qwen2", marks=pytest.mark.slow)],
    indirect=True,
)
def test_sharded_model_gives_the_same_logits(checkpoint):
    """Under jit on an Auto mesh (GSPMD adds the collectives); the forward does not yet annotate Explicit types."""
    mesh = jax.make_mesh((2, 4), ("fsdp", "tensor"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    model = models.from_pretrained(checkpoint.sharded, shardings=rule_shardings(mesh))
    reference = models.from_pretrained(checkpoint.sharded)
    ids, mask = padded_batch("left")
    diff = max_diff_on_real(nsa_logits(model, ids, mask), nsa_logits(reference, ids, mask), mask)
    assert diff < 1e-5
