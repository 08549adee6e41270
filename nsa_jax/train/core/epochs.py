"""A `loop.Source` over a fixed batch of groups: epochs of seeded permutations, one mini-batch of whole groups a
round, each cut to its token band. The offline methods (groups of K responses) and DPO (groups of 2: chosen,
rejected) both train this way."""

from __future__ import annotations

from typing import Any

import numpy as np

from nsa_jax import rollouts
from nsa_jax.rollouts import Batch, token_band
from nsa_jax.train.core.engine import Engine, Round


class GroupEpochs:
    """Round `i` is mini-batch `i % steps_per_epoch` of epoch `i // steps_per_epoch`, whose groups follow the
    permutation seeded by `(seed, epoch)`; a final partial mini-batch of an epoch is dropped (one shape). Each
    round reports the exact reward and group shares of its rows when the batch has `rewards`."""

    def __init__(self, batch: Batch, batch_size: int, seed: int):
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
        host = token_band(self.batch.select(rows)).arrays()
        metrics = rollouts.group_outcomes(host["rewards"], g) if "rewards" in host else {}
        return Round([host], metrics)

    def data_state(self, position: int) -> dict[str, Any]:
        return {"position": position, "seed": self.seed, "groups": self.groups, "per_step": self.groups_per_step}
