"""reasoning-gym data sets as nsa_jax tasks (optional extra: ``pip install nsa_jax[tasks]``).

``get_task("gym", dataset="chain_sum", **config)`` wraps any procedural reasoning-gym data set: problems are drawn
deterministically from the seed, train/test are disjoint by hashing the question (as for the built-in tasks), and
the data set's own ``score_answer`` is the verifier, run in a sandboxed worker pool (some scorers ``eval`` the
answer through sympy). The answer is extracted with our usual formats (``#### x``, ``\\boxed{}``, "answer: x").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from nsa_jax.tasks.answers import extract_answer, looks_hostile
from nsa_jax.tasks.base import Problem, StepCheck, check_split, register_task, split_of
from nsa_jax.tasks.pool import OK, WorkerPool

_POOLS: dict[int, WorkerPool] = {}


def _gym_pool(n_workers: int) -> WorkerPool:
    """One pool per size, shared by every gym task; the workers import reasoning-gym (~5 s) before taking work."""
    if n_workers not in _POOLS or _POOLS[n_workers].closed:
        import atexit

        _POOLS[n_workers] = WorkerPool(n_workers, preload=("nsa_jax.tasks.gym_job",), memory_limit=4 << 30)
        atexit.register(_POOLS[n_workers].close)
    return _POOLS[n_workers]


class GymTask:
    """A reasoning-gym data set behind the ``Task`` interface; rewards are ``score_answer >= threshold``."""

    def __init__(
        self,
        dataset: str,
        *,
        test_fraction: float = 0.1,
        threshold: float = 1.0,
        deadline_s: float = 10.0,
        n_workers: int = 1,
        **config: Any,
    ):
        try:
            import reasoning_gym
        except ImportError as e:
            raise ImportError("the 'gym' task needs reasoning-gym: pip install 'nsa_jax[tasks]'") from e
        self._rg = reasoning_gym
        self.dataset, self.config = dataset, dict(config)
        self.name = f"gym:{dataset}"
        self.test_fraction, self.threshold, self.deadline_s = test_fraction, threshold, deadline_s
        reasoning_gym.create_dataset(dataset, size=1, seed=0, **config)  # fail now on a bad name or config
        self.pool = _gym_pool(n_workers)
        self.pool.warm_up()  # workers start importing now, not on the first reward

    def sample(self, split: str, n: int, seed: int = 0, difficulty: int | None = None) -> list[Problem]:
        """``n`` problems of ``split``; reasoning-gym difficulty lives in its config, so ``difficulty`` must be None."""
        check_split(split)
        if difficulty is not None:
            raise ValueError(f"task {self.name!r}: set difficulty through the data set config, not difficulty=")
        out: list[Problem] = []
        chunk = max(64, 2 * n)
        for round_ in range(1000):
            ds = self._rg.create_dataset(self.dataset, size=chunk, seed=seed * 1000 + round_, **self.config)
            for entry in ds:
                if split_of(entry["question"], self.test_fraction) == split:
                    out.append(self._problem(entry))
                    if len(out) == n:
                        return out
        raise RuntimeError(f"task {self.name!r}: could not draw {n} {split} problems")

    def _problem(self, entry: dict[str, Any]) -> Problem:
        answer = str(entry["answer"])
        # entries go to worker processes and maybe to disk: keep them JSON-clean (tuples become lists)
        clean = json.loads(json.dumps(entry, default=str))
        return Problem(
            prompt=entry["question"],
            answer=answer,
            difficulty=0,
            solution=f"#### {answer}",
            steps=(),
            task=self.name,
            meta={"entry": clean},
        )

    def verify_batch(
        self, responses: Sequence[str], problems: Sequence[Problem], *, deadline_s: float | None = None
    ) -> np.ndarray:
        """float32 ``[len(responses)]`` in {0, 1}; items without an answer, or timing out, score 0. The whole batch
        has ``deadline_s`` (default: the task's own ``deadline_s``, which also bounds each item)."""
        scores = np.zeros(len(responses), np.float32)
        jobs = []
        key = tuple(sorted(self.config.items()))
        for i, (response, problem) in enumerate(zip(responses, problems, strict=True)):
            answer = extract_answer(response)
            if answer is not None and not looks_hostile(answer):
                jobs.append((i, (self.dataset, key, problem.meta["entry"], answer)))
        if jobs:
            results = self.pool.map(
                "nsa_jax.tasks.gym_job:score_answer",
                [args for _, args in jobs],
                item_deadline_s=self.deadline_s,
                deadline_s=self.deadline_s if deadline_s is None else deadline_s,
            )
            for (i, _), (status, value) in zip(jobs, results):
                scores[i] = float(status == OK and value >= self.threshold)
        return scores

    def verify(self, response: str, problem: Problem) -> float:
        return float(self.verify_batch([response], [problem])[0])

    def check_steps(self, response: str, problem: Problem) -> StepCheck:
        raise NotImplementedError(f"task {self.name!r} has no ground-truth step labels")


@register_task("gym")
def make_gym(dataset: str, **kwargs: Any) -> GymTask:
    return GymTask(dataset, **kwargs)
