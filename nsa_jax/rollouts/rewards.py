"""Rewards as a pluggable function: `reward_fn(problems, responses) -> rewards [B] float32`.

The rollout collector calls whatever function the trainer hands it, so the task's own verifier, PNS's composite
reward or a reward model's score are interchangeable. `problems[i]` is the problem response `i` answers (a group's
problem repeated G times, group-major).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from nsa_jax import tasks

RewardFn = Callable[[Sequence[tasks.Problem], Sequence[str]], np.ndarray]


def verifier_reward(task: tasks.Task, *, deadline_s: float = 5.0) -> RewardFn:
    """The task's own verifier (`task.verify_batch`, deadline-bounded over the batch): 1 right, 0 wrong."""

    def reward(problems: Sequence[tasks.Problem], responses: Sequence[str]) -> np.ndarray:
        return np.asarray(task.verify_batch(responses, problems, deadline_s=deadline_s), np.float32)

    return reward
