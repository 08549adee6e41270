"""Mesh construction, the logical-axis -> mesh-axis table, and multi-host initialisation."""

from nsa_jax.parallel.distributed import initialize, is_main_process
from nsa_jax.parallel.mesh import (
    BATCH_AXES,
    LOGICAL_RULES,
    MESH_AXES,
    batch_sharding,
    logical_to_spec,
    make_mesh,
    mesh_shape,
    param_shardings,
    shard_model,
)

__all__ = [
    "BATCH_AXES",
    "LOGICAL_RULES",
    "MESH_AXES",
    "batch_sharding",
    "initialize",
    "is_main_process",
    "logical_to_spec",
    "make_mesh",
    "mesh_shape",
    "param_shardings",
    "shard_model",
]
