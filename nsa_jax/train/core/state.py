"""The training state as one pytree, and its shardings on a mesh.

Parameters are kept as a plain nested dict of arrays (`nnx.to_pure_dict` of the model's `nnx.Param` state) next to
the model's `graphdef`: a pure pytree passes through `jax.jit` with explicit shardings, through `optax` and through
orbax unchanged, and `nnx.merge(graphdef, params)` rebuilds the module inside the jitted step.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nsa_jax import parallel

Params = dict[str, Any]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
    """Everything a resumed run needs besides the data position (which the checkpoint stores beside it).

    step: [] int32, train steps taken (skipped non-finite steps included, so the data position follows it).
    params / opt_state: the policy's parameters and the optimiser's state.
    rng: [2] uint32 raw PRNG key, split once per step (raw, not a typed key, so orbax stores a plain array).
    nonfinite_in_a_row / nonfinite_total: [] int32 counters of skipped updates (see `step.make_train_step`).
    """

    step: jax.Array
    params: Params
    opt_state: optax.OptState
    rng: jax.Array
    nonfinite_in_a_row: jax.Array
    nonfinite_total: jax.Array


def split_model(model: nnx.Module) -> tuple[nnx.GraphDef, Params]:
    """The model's static graph and its parameters as a pure dict of arrays."""
    graphdef, params = nnx.split(model, nnx.Param)
    return graphdef, nnx.to_pure_dict(params)


def init_state(params: Params, tx: optax.GradientTransformation, seed: int) -> TrainState:
    """A fresh state at step 0. Call it under `jax.jit(..., out_shardings=state_shardings(...))` to init sharded."""
    zero = jnp.zeros((), jnp.int32)
    return TrainState(
        step=zero,
        params=params,
        opt_state=tx.init(params),
        rng=jax.random.PRNGKey(seed),
        nonfinite_in_a_row=zero,
        nonfinite_total=zero,
    )


def state_shardings(model: nnx.Module, tx: optax.GradientTransformation, mesh: Mesh) -> TrainState:
    """A TrainState of NamedShardings: parameters (and the optimiser's per-parameter moments) follow the logical-axis
    table of `parallel.param_shardings`; scalars, counters and the key are replicated."""
    replicated = NamedSharding(mesh, PartitionSpec())
    params = nnx.to_pure_dict(parallel.param_shardings(model, mesh))
    abstract_opt = jax.eval_shape(tx.init, jax.eval_shape(lambda: split_model(model)[1]))
    opt_state = optax.tree_map_params(
        tx, lambda _, sharding: sharding, abstract_opt, params, transform_non_params=lambda _: replicated
    )
    return TrainState(
        step=replicated,
        params=params,
        opt_state=opt_state,
        rng=replicated,
        nonfinite_in_a_row=replicated,
        nonfinite_total=replicated,
    )
