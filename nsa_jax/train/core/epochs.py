"""A `loop.Source` over a fixed batch of groups: epochs of seeded permutations, one mini-batch of whole groups a
round, each cut to its token band. The offline methods (groups of K responses) and DPO (groups of 2: chosen,
rejected) both train this way. With a `prompt_width`, each round's groups have their prompt set apart
(`rollouts.prompt_apart`), so every forward of the step computes a prompt once for its group, as the online RL
update does."""

from __future__ import annotations

from typing import Any

import ml_collections
import numpy as np
from jax.sharding import AxisType, Mesh

from nsa_jax import rollouts
from nsa_jax.rollouts import Batch, prompt_apart, token_band
from nsa_jax.train.core.engine import Engine, Round


class GroupEpochs:
    """Round `i` is mini-batch `i % steps_per_epoch` of epoch `i // steps_per_epoch`, whose groups follow the
    permutation seeded by `(seed, epoch)`; a final partial mini-batch of an epoch is dropped (one shape). Each
    round reports the exact reward and group shares of its rows when the batch has `rewards`.

    prompt_width: the batch's prompt columns (prompts left-padded to it, responses after), to set each round's
    prompts apart; a round whose layout does not allow it (see `prompt_apart`) is cut to its token band as without
    one, and `shared_prompt` in its metrics says which it was. None: whole rows.
    """

    def __init__(self, batch: Batch, batch_size: int, seed: int, *, prompt_width: int | None = None):
        self.prompt_width = prompt_width
        g = batch.group_size
        if batch_size % g:
            raise ValueError(f"batch_size={batch_size} must hold whole groups of {g} rows")
        self.batch, self.seed, self.groups_per_step = batch, seed, batch_size // g
        self.groups = len(batch) // g
        if self.groups < self.groups_per_step:
            raise ValueError(f"{self.groups} groups are fewer than one batch of {self.groups_per_step}")
        self.steps_per_epoch = self.groups // self.groups_per_step

    def round(self, position: int, engine: Engine | None = None) -> Round:
        epoch, k = divmod(position, self.steps_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.groups)
        groups = order[k * self.groups_per_step : (k + 1) * self.groups_per_step]
        g = self.batch.group_size
        rows = (groups[:, None] * g + np.arange(g)).reshape(-1)
        selected = self.batch.select(rows)
        apart = None if self.prompt_width is None else prompt_apart(selected, self.prompt_width)
        host = (token_band(selected) if apart is None else apart).arrays()
        metrics = rollouts.group_outcomes(host["rewards"], g) if "rewards" in host else {}
        if self.prompt_width is not None:
            metrics["shared_prompt"] = float(apart is not None)
        return Round([host], metrics)

    def data_state(self, position: int) -> dict[str, Any]:
        return {"position": position, "seed": self.seed, "groups": self.groups, "per_step": self.groups_per_step}


def shares_prompt(config: ml_collections.ConfigDict, mesh: Mesh) -> bool:
    """Whether a trainer's steps compute each group's prompt once: `rl.share_prompt` (on where a config has no `rl`
    block), off meshes with Explicit axes, where the rows' split over the devices must match their prompts'
    exactly, which groups spread over several devices do not."""
    rl = config.get("rl")
    return (rl is None or rl.share_prompt) and AxisType.Explicit not in mesh.axis_types


def shared_prompt_width(config: ml_collections.ConfigDict, mesh: Mesh, batch: Batch) -> int | None:
    """`GroupEpochs`' `prompt_width` for a stored batch of groups: its prompts' columns (`rollouts.response_start`)
    where the trainer `shares_prompt`, else None."""
    return rollouts.response_start(batch) if shares_prompt(config, mesh) else None
