"""Mesh construction, the logical-axis -> mesh-axis table, multi-host initialisation and host-side collectives."""

from nsa_jax.parallel.distributed import (
    broadcast_from_main,
    global_array,
    initialize,
    is_main_process,
    main_process_first,
    map_rows,
    to_host,
)
from nsa_jax.parallel.mesh import (
    BATCH_AXES,
    LOGICAL_RULES,
    MESH_AXES,
    batch_axes,
    batch_sharding,
    batch_shards,
    logical_to_spec,
    make_mesh,
    mesh_shape,
    param_shardings,
    replicated_against_rules,
    shard_model,
    split_rows,
)

__all__ = [
    "BATCH_AXES",
    "LOGICAL_RULES",
    "MESH_AXES",
    "batch_axes",
    "batch_sharding",
    "batch_shards",
    "broadcast_from_main",
    "global_array",
    "initialize",
    "is_main_process",
    "logical_to_spec",
    "main_process_first",
    "make_mesh",
    "map_rows",
    "mesh_shape",
    "param_shardings",
    "replicated_against_rules",
    "shard_model",
    "split_rows",
    "to_host",
]
