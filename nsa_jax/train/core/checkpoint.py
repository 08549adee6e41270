"""Orbax checkpoints of the training state plus the data position and the run's history, with automatic resume.

Orbax writes each checkpoint into a temporary directory and renames it into place only once every file is written
(and records `commit_success.txt` on file systems without atomic rename), so `latest_step()` only ever returns a
complete checkpoint: a run killed in the middle of a save leaves its temporary directory behind, which is ignored,
and the previous checkpoint stays usable.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from nsa_jax.train.core.state import TrainState


class Checkpointer:
    """Saves `(state, data_state, history)` every `every` steps (and when forced), keeps the last `keep`, restores
    the latest. `history` is the list of metric records the run has written (see `loop.run`)."""

    def __init__(self, directory: str, *, every: int, keep: int):
        self.every = every
        self._manager = ocp.CheckpointManager(
            os.path.abspath(directory),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=max(1, every), create=True),
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(
        self,
        step: int,
        state: TrainState,
        data_state: dict[str, Any],
        history: list[dict[str, float]],
        *,
        force: bool = False,
    ) -> bool:
        """Starts a (background) save when `step` is on the interval or `force`; returns whether it saved."""
        if not force and not self._manager.should_save(step):
            return False  # the history is copied only for the saves that happen
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave(data_state),
            history=ocp.args.JsonSave({"records": list(history)}),
        )
        return self._manager.save(step, args=args, force=force)

    def restore(
        self, step: int, shardings: TrainState, like: TrainState
    ) -> tuple[TrainState, dict[str, Any], list[dict[str, float]]]:
        """The state saved at `step`, placed with `shardings` (`like` gives shapes and dtypes, arrays or abstract),
        its data state and its history."""
        target = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), like, shardings)
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore(), history=ocp.args.JsonRestore()
        )
        restored = self._manager.restore(step, args=args)
        return restored.state, dict(restored.data), list(restored.history["records"])

    def close(self) -> None:
        """Waits for a background save to finish, then releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
