"""Tasks over local GSM8K/MATH-layout JSONL files ("gsm8k", "math" in the registry).

TFDS and grain are imported only when such a task is made, so the built-in tasks stay import-light.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nsa_jax.tasks.base import Problem, StepCheck, register_task
from nsa_jax.tasks.verify import ReferenceAnswerTask


class FileTask(ReferenceAnswerTask):
    """Problems read from ``<source_dir>/<split>.jsonl`` through ``tfds.data_source``; verified with math-verify.

    MATH levels are the difficulty; GSM8K problems have difficulty 0. There are no step labels, so
    ``check_steps`` raises ``NotImplementedError`` (BCPG-NSA uses its judges on these).
    """

    def __init__(
        self,
        layout: str,
        source_dir: str | os.PathLike,
        *,
        data_dir: str | os.PathLike | None = None,
        skip_malformed: bool = False,
    ):
        from nsa_jax.tasks import tfds_jsonl  # here, not at the top: TFDS only when file data is used

        self._tfds = tfds_jsonl
        self.name = layout
        self.source_dir, self.data_dir, self.skip_malformed = source_dir, data_dir, skip_malformed
        self._sources: dict[str, Any] = {}

    def source(self, split: str):
        """The random-access data source of ``split`` (prepared on first use, then cached)."""
        if split not in self._sources:
            self._sources[split] = self._tfds.jsonl_data_source(
                self.name, self.source_dir, split, data_dir=self.data_dir, skip_malformed=self.skip_malformed
            )
        return self._sources[split]

    def problem(self, split: str, index: int) -> Problem:
        return self._tfds.record_to_problem(self.name, self.source(split)[index])

    def sample(self, split: str, n: int, seed: int = 0, difficulty: int | None = None) -> list[Problem]:
        """``n`` problems in a seeded random order, cycling through the split when ``n`` exceeds its size."""
        src = self.source(split)
        eligible = np.arange(len(src))
        if difficulty is not None:
            eligible = np.array([i for i in eligible if self.problem(split, int(i)).difficulty == difficulty], int)
        if len(eligible) == 0:
            raise ValueError(f"task {self.name!r}: no {split} problems with difficulty {difficulty!r}")
        rng = np.random.default_rng(seed)
        order = np.concatenate([rng.permutation(eligible) for _ in range(-(-n // len(eligible)))])[:n]
        return [self.problem(split, int(i)) for i in order]

    def check_steps(self, response: str, problem: Problem) -> StepCheck:
        raise NotImplementedError(f"task {self.name!r} has no ground-truth step labels")


@register_task("gsm8k")
def make_gsm8k(source_dir: str | os.PathLike, **kwargs: Any) -> FileTask:
    return FileTask("gsm8k", source_dir, **kwargs)


@register_task("math")
def make_math(source_dir: str | os.PathLike, **kwargs: Any) -> FileTask:
    return FileTask("math", source_dir, **kwargs)
