"""Device mesh from config and the one table from logical axis names to mesh axes.

Parallelism is a config change: the mesh has axes ("data", "fsdp", "tensor"); parameters carry logical axis names
(see `nsa_jax.models.layers.param`); `LOGICAL_RULES` says which mesh axis shards each name. A dimension that the
mesh axis does not divide is replicated instead (e.g. 2 KV heads on a tensor axis of 4), so one table serves
every model size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")
# Activations' batch dimension is split over both data-parallel axes; weights are split over fsdp and tensor.
BATCH_AXES = ("data", "fsdp")
LOGICAL_RULES: tuple[tuple[str, str | tuple[str, ...] | None], ...] = (
    ("batch", BATCH_AXES),
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("mlp", "tensor"),
    ("head_dim", None),
    ("layers", None),
)


def mesh_shape(sizes: Sequence[int], n_devices: int) -> tuple[int, ...]:
    """Resolves one -1 entry to fill the devices; checks the product matches."""
    sizes = list(sizes)
    if sizes.count(-1) > 1:
        raise ValueError(f"mesh sizes {sizes}: at most one axis may be -1")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if n_devices % known:
            raise ValueError(f"mesh sizes {sizes} do not divide {n_devices} devices")
        sizes[sizes.index(-1)] = n_devices // known
    if math.prod(sizes) != n_devices:
        raise ValueError(f"mesh sizes {sizes} use {math.prod(sizes)} devices, but {n_devices} are available")
    return tuple(sizes)


def make_mesh(data: int = 1, fsdp: int = -1, tensor: int = 1, devices: Sequence | None = None) -> Mesh:
    """A ("data", "fsdp", "tensor") mesh over all (or the given) devices with Auto axes (pjit-style propagation)."""
    devices = list(devices if devices is not None else jax.devices())
    shape = mesh_shape((data, fsdp, tensor), len(devices))
    return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * 3, devices=devices)


def axes_of(entry: str | Sequence[str] | None) -> tuple[str, ...]:
    """One PartitionSpec entry (or a target of the logical-axes table) as a tuple of mesh axis names."""
    if entry is None:
        return ()
    return (entry,) if isinstance(entry, str) else tuple(entry)


def entry_of(axes: Sequence[str]) -> str | tuple[str, ...] | None:
    """Mesh axis names as one PartitionSpec entry: None for none, a bare name for one, a tuple for several."""
    axes = tuple(axes)
    return axes[0] if len(axes) == 1 else (axes or None)


def logical_to_spec(axes: Sequence[str | None], shape: Sequence[int], mesh: Mesh, rules=LOGICAL_RULES) -> PartitionSpec:
    """PartitionSpec for an array of `shape` whose dimensions have logical names `axes`.

    A mesh axis is used at most once per array, and only where it divides the dimension.
    """
    table = dict(rules)
    used: set[str] = set()
    spec = []
    for name, dim in zip(axes, shape, strict=True):
        target = table.get(name) if name else None
        mesh_axes = tuple(a for a in axes_of(target) if a in mesh.shape and a not in used and mesh.shape[a] > 1)
        size = math.prod(mesh.shape[a] for a in mesh_axes)
        if not mesh_axes or dim % size:
            spec.append(None)
            continue
        used.update(mesh_axes)
        spec.append(entry_of(mesh_axes))
    return PartitionSpec(*spec)


def param_shardings(model: nnx.Module, mesh: Mesh, rules=LOGICAL_RULES) -> nnx.State:
    """The model's parameter state with each leaf replaced by its NamedSharding from the logical-axes table."""

    def one(var):
        axes = var.get_metadata().get("axes") or (None,) * np.ndim(var[...])
        return NamedSharding(mesh, logical_to_spec(axes, np.shape(var[...]), mesh, rules))

    state = nnx.state(model, nnx.Param)
    return jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def replicated_against_rules(model: nnx.Module, mesh: Mesh, rules=LOGICAL_RULES) -> list[str]:
    """The parameter dimensions the table assigns to mesh axes of size > 1 that do not divide them, so they are
    replicated there instead, as `"path: name=size over axis=size"` lines (at 7B an unexpected one is the
    difference between fitting and running out of memory)."""
    table = dict(rules)
    out = []
    for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        axes = var.get_metadata().get("axes") or ()
        for name, dim in zip(axes, np.shape(var[...])):
            target = table.get(name) if name else None
            mesh_axes = [a for a in axes_of(target) if mesh.shape.get(a, 1) > 1]
            size = math.prod(mesh.shape[a] for a in mesh_axes)
            if mesh_axes and dim % size:
                where = " x ".join(f"{a}={mesh.shape[a]}" for a in mesh_axes)
                out.append(f"{'.'.join(map(str, path))}: {name}={dim} over {where}")
    return out


def shard_model(model: nnx.Module, mesh: Mesh, rules=LOGICAL_RULES) -> nnx.Module:
    """Moves the model's parameters onto the mesh in place, by the table; returns the model."""
    state = nnx.state(model, nnx.Param)
    shardings = param_shardings(model, mesh, rules)
    nnx.update(model, jax.device_put(state, shardings))
    return model


def batch_axes(mesh) -> tuple[str, ...]:
    """The data-parallel axes of `mesh` (a Mesh or an AbstractMesh) that split a batch: those of size > 1."""
    return tuple(a for a in BATCH_AXES if a in mesh.shape and mesh.shape[a] > 1)


def batch_shards(mesh, rows: int) -> int:
    """Into how many blocks `rows` rows split over the data-parallel axes of `mesh` (a Mesh, an AbstractMesh, or
    None): the product of their sizes where it divides `rows`, else 1."""
    if mesh is None or mesh.empty:
        return 1
    shards = math.prod(mesh.shape[a] for a in batch_axes(mesh))
    return shards if rows % shards == 0 else 1


def batch_sharding(mesh: Mesh, ndim: int = 2) -> NamedSharding:
    """Sharding for a [B, ...] batch: B over the data-parallel axes present in the mesh, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(entry_of(batch_axes(mesh)), *([None] * (ndim - 1))))


def split_rows(x: jax.Array, dims: Sequence[int]) -> jax.Array:
    """x [B, ...] reshaped to [*dims, ...] (prod(dims) == B), also where B is sharded over a mesh with Explicit axes.

    Rows split over mesh axes in contiguous blocks stay where they are when each device's block is whole entries of
    the leading new dimensions: the mesh axes (major first) go to the first dimension while their product divides
    it, then to the next once it is used up. Where a block would cut across entries (16 rows in groups of 4 split
    over 2 x 4 devices: each holds half a group), x is first gathered over the axes left over, so the result is
    split over fewer devices. Without a mesh, or with Auto axes, a plain reshape (XLA propagates the sharding).
    """
    dims = tuple(dims)
    sharding = jax.typeof(x).sharding
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or mesh.empty or AxisType.Explicit not in mesh.axis_types or not sharding.spec:
        return x.reshape(*dims, *x.shape[1:])
    spec = sharding.spec
    left = list(axes_of(spec[0]))
    entries = []
    for d in dims:
        taken = []
        while left and d % math.prod(mesh.shape[a] for a in (*taken, left[0])) == 0:
            taken.append(left.pop(0))
        entries.append(entry_of(taken))
        if math.prod(mesh.shape[a] for a in taken) != d:  # a device holds several entries: the rest stay whole
            break
    entries += [None] * (len(dims) - len(entries))
    if left:  # gather over the axes that cannot follow the rows
        kept = [a for e in entries for a in axes_of(e)]
        x = jax.sharding.reshard(x, PartitionSpec(entry_of(kept), *spec[1:]))
    return x.reshape(*dims, *x.shape[1:], out_sharding=PartitionSpec(*entries, *spec[1:]))
