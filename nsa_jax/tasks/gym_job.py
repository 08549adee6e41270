"""The job reasoning-gym workers run: a data set's own ``score_answer`` on an extracted answer.

Some ``score_answer`` implementations parse the answer with sympy's ``parse_expr`` (an ``eval``), so they only
ever run here, inside a sandboxed worker with a deadline. Data sets are rebuilt from their name and config and
cached per worker.
"""

from __future__ import annotations

import functools
from typing import Any

import reasoning_gym


@functools.lru_cache(maxsize=16)
def _dataset(name: str, config: tuple[tuple[str, Any], ...]):
    return reasoning_gym.create_dataset(name, size=1, seed=0, **dict(config))


def score_answer(name: str, config: tuple[tuple[str, Any], ...], entry: dict[str, Any], answer: str) -> float:
    return float(_dataset(name, config).score_answer(answer, entry))
