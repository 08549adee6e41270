"""Orbax checkpoints of the training state plus the data position, with automatic resume.

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

from nsa_jax.train.state import TrainState


class Checkpointer:
    """Saves `(state, data_state)` every `every` steps (and when forced), keeps the last `keep`, restores the latest."""

    def __init__(self, directory: str, *, every: int, keep: int):
        self.every = every
        self._manager = ocp.CheckpointManager(
            os.path.abspath(directory),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=max(1, every), create=True),
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: TrainState, data_state: dict[str, Any], *, force: bool = False) -> bool:
        """Starts a (background) save when `step` is on the interval or `force`; returns whether it saved."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state))
        return self._manager.save(step, args=args, force=force)

    def restore(self, step: int, shardings: TrainState, like: TrainState) -> tuple[TrainState, dict[str, Any]]:
        """The state saved at `step`, placed with `shardings`; `like` gives shapes and dtypes (arrays or abstract)."""
        target = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), like, shardings)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore())
        restored = self._manager.restore(step, args=args)
        return restored.state, dict(restored.data)

    def close(self) -> None:
        """Waits for a background save to finish, then releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
