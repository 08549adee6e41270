"""The engine: one model's training state and its jitted train step, built the same way for every trainer.

`Engine.from_config` is the one state/step builder: AdamW on the config's schedule (or a given `tx`), parameters and
optimiser state sharded by the logical-axis table, group-preserving micro-batches, and one compiled step per batch
layout (the jit cache adds one per shape). A trainer hands the engine host batches (`run_round`), the loop
(`loop.run`) checkpoints and restores `engine.state`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from nsa_jax import parallel
from nsa_jax.train.core.optim import learning_rate_schedule, make_optimizer
from nsa_jax.train.core.policy import set_params
from nsa_jax.train.core.state import TrainState, init_state, split_model, state_shardings
from nsa_jax.train.core.step import (
    LossFn,
    device_batch,
    jit_train_step,
    make_train_step,
    micro_batches,
    split_micro_batches,
)

HostBatch = dict[str, np.ndarray]


@dataclasses.dataclass
class Round:
    """What a trainer's source gives the loop for one round (the unit of data position, logging and checkpoints).

    batches: host batches, one optimiser step each (one for SFT; the PPO epochs' mini-batches for online RL).
    metrics: host statistics of the round (rewards, group shares, phase times); exact values, so they take
        precedence over the steps' metrics of the same name.
    """

    batches: Sequence[HostBatch]
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)


class Engine:
    """A model's `TrainState` and the jitted step that updates it.

    The state is created on first use (or set by a checkpoint restore, so a resumed run never builds a fresh state
    first); `policy()` returns the model holding the current parameters, for sampling and export.
    """

    def __init__(
        self,
        model: nnx.Module,
        mesh: Mesh,
        loss_fn: LossFn,
        *,
        tx: optax.GradientTransformation,
        micro_batches: int = 1,
        group_size: int = 1,
        schedule: optax.Schedule | None = None,
        seed: int = 0,
    ):
        self.model, self.mesh, self.tx = model, mesh, tx
        self.micro_batches, self.group_size = micro_batches, group_size
        self.graphdef, self._params = split_model(model)
        self.shardings = state_shardings(model, tx, mesh)
        self.new_state = functools.partial(init_state, tx=tx, seed=seed)
        step = make_train_step(
            self.graphdef, loss_fn, tx, micro_batches=micro_batches, group_size=group_size, schedule=schedule
        )
        self._compiled = functools.lru_cache(maxsize=None)(
            lambda layout: jit_train_step(
                step, self.shardings, {k: parallel.batch_sharding(mesh, ndim) for k, ndim in layout}
            )
        )
        self._state: TrainState | None = None

    @classmethod
    def from_config(
        cls,
        config: ml_collections.ConfigDict,
        model: nnx.Module,
        mesh: Mesh,
        loss_fn: LossFn,
        *,
        total_steps: int,
        group_size: int = 1,
        tx: optax.GradientTransformation | None = None,
    ) -> Engine:
        """The config's optimiser over `total_steps` steps (or `tx`, for tests that read gradients off plain SGD),
        `micro_batch_size` micro-batches of whole groups, the training state seeded by `config.seed`."""
        return cls(
            model,
            mesh,
            loss_fn,
            tx=tx or make_optimizer(config.optimizer, total_steps),
            micro_batches=micro_batches(config, mesh, group_size),
            group_size=group_size,
            schedule=learning_rate_schedule(config.optimizer, total_steps) if tx is None else None,
            seed=config.seed,
        )

    @property
    def state(self) -> TrainState:
        if self._state is None:
            self._state = jax.jit(self.new_state, out_shardings=self.shardings)(self._params)
            self._params = None  # the state owns (and the first step donates) the parameters from here on
        return self._state

    @state.setter
    def state(self, value: TrainState) -> None:
        self._state, self._params = value, None

    def abstract_state(self) -> TrainState:
        """Shapes and dtypes of the state (what a checkpoint restore needs), without building it."""
        params = self._params if self._state is None else self._state.params
        return jax.eval_shape(self.new_state, params)

    def initial_params(self) -> Any:
        """A copy of the parameters the engine was built with, the start policy: a frozen reference model. Only
        before the state exists (no step taken, no checkpoint restored), since the state owns them from then on."""
        if self._state is not None:
            raise RuntimeError("initial_params() after the training state was created: take the reference first")
        return jax.tree.map(jnp.copy, self._params)

    def policy(self) -> nnx.Module:
        """The model with the current parameters (the step donates the state, so they are set on each call)."""
        set_params(self.model, self.state.params)
        return self.model

    def micro_batch_rows(self, host: np.ndarray) -> np.ndarray:
        """A host array of one step's batch [B, ...] as the step splits it, [M, B/M, ...] (micro-batch m holds the
        rows the step's m-th micro-batch holds, in the same order)."""
        return split_micro_batches({"x": host}, self.micro_batches, self.group_size)["x"]

    def prepared_step(self, host: HostBatch):
        """(the jitted step for the host batch's layout, the batch on the devices, split over the batch axes): what
        `step` runs, and what a caller lowers to read the compiled program."""
        layout = tuple(sorted((k, v.ndim) for k, v in host.items()))
        shardings = {k: parallel.batch_sharding(self.mesh, ndim) for k, ndim in layout}
        return self._compiled(layout), device_batch(host, shardings)

    def step(self, host: HostBatch) -> dict[str, jax.Array]:
        """One optimiser step on a host batch (sharded over the batch axes); returns the device metrics."""
        step, batch = self.prepared_step(host)
        self.state, metrics = step(self.state, batch)
        return metrics

    def run_round(self, round_: Round) -> dict[str, float]:
        """Every batch of the round, one step each (at most `parallel.MAX_IN_FLIGHT` of them unfinished at a time);
        the steps' metrics averaged (`nonfinite_in_a_row` is the last step's), then the round's own metrics."""
        history = []
        for host in round_.batches:
            history.append(self.step(host))
            parallel.pace(history)
        history = jax.device_get(history)
        out = {k: float(np.mean([h[k] for h in history])) for k in history[0]} if history else {}
        if history:
            out["nonfinite_in_a_row"] = float(history[-1]["nonfinite_in_a_row"])
        return {**out, **round_.metrics}
