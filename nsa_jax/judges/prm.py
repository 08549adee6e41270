"""The PRM judge (BCPG-NSA stage 3, ALGORITHMS.md section 3.2): a process reward model's score at the last token of
each step, a step called correct when `sigmoid(score)` is above a threshold.

The PRM is a scalar head on a decoder backbone (`models.ScalarHead`, trained by the "prm" trainer with BCE on step
labels, `losses.step_bce_loss`). Steps come as per-token step ids aligned with `input_ids` (-1 outside the response),
as the segmenters of `judges.segment` give them, so the PRM sees exactly the prefix up to the end of each step (a
causal model's score at a token depends on nothing after it).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from nsa_jax import models, parallel


def step_ends(step_ids: np.ndarray) -> np.ndarray:
    """[N, T] bool: the last token of each step (a step id >= 0 that the next column does not continue)."""
    ids = np.asarray(step_ids)
    following = np.concatenate([ids[:, 1:], np.full((ids.shape[0], 1), -1, ids.dtype)], axis=1)
    return (ids >= 0) & (following != ids)


def step_values(values: np.ndarray, step_ids: np.ndarray, num_steps: int) -> np.ndarray:
    """[N, S] float: `values` [N, T] at the last token of each step 0..S-1 (NaN for a step with no token)."""
    ids = np.asarray(step_ids)
    out = np.full((ids.shape[0], num_steps), np.nan, np.float32)
    rows, cols = np.nonzero(step_ends(ids))
    steps = ids[rows, cols]
    keep = steps < num_steps
    out[rows[keep], steps[keep]] = np.asarray(values)[rows[keep], cols[keep]]
    return out


_probabilities = nnx.jit(lambda head, ids, mask: jax.nn.sigmoid(head(ids, attention_mask=mask)))


class PRMJudge:
    """Step probabilities and 0/1 labels of a PRM head, `rows` rows per forward (sharded over the mesh's batch axes
    when a mesh is given)."""

    def __init__(self, head: models.ScalarHead, *, threshold: float = 0.5, rows: int = 32, mesh: Mesh | None = None):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"PRM threshold {threshold} must lie in [0, 1]")
        self.head, self.threshold, self.rows, self.mesh = head, threshold, rows, mesh

    def token_probabilities(self, tokens: Mapping[str, np.ndarray]) -> np.ndarray:
        """[N, T] sigmoid of the head's score at every column of `input_ids` / `attention_mask`."""
        arrays = [np.asarray(tokens[k]) for k in ("input_ids", "attention_mask")]
        return parallel.map_rows(_probabilities, self.head, arrays, rows=self.rows, mesh=self.mesh)

    def step_probabilities(self, tokens: Mapping[str, np.ndarray], step_ids: np.ndarray, num_steps: int):
        """[N, S] probability that each step is correct (NaN where a row has fewer steps)."""
        return step_values(self.token_probabilities(tokens), step_ids, num_steps)

    def label(self, tokens: Mapping[str, np.ndarray], step_ids: np.ndarray, num_steps: int) -> np.ndarray:
        """[N, S] bool: step probability above the threshold (False for a step with no token)."""
        p = self.step_probabilities(tokens, step_ids, num_steps)
        return np.nan_to_num(p, nan=-1.0) > self.threshold
