"""Problem records, the task interface, and the registry of tasks by name.

Every source of problems (built-in generators, local GSM8K/MATH files, reasoning-gym) is exposed through the same
small interface so the trainer never needs to know where a prompt came from: ``sample`` draws problems,
``verify`` scores a response in {0, 1}, ``check_steps`` labels the steps of a response against the truth (only the
built-in tasks can do that; the others raise ``NotImplementedError``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Problem:
    """One verifiable problem.

    ``solution`` is the canonical chain of thought: the lines of ``steps``, then the final answer line
    ``#### <answer>``. ``meta`` holds whatever the task's step checker needs (JSON-serialisable values only, so a
    problem can be stored in a data set and checked later).
    """

    prompt: str
    answer: str
    difficulty: int
    solution: str
    steps: tuple[str, ...]
    task: str
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepCheck:
    """Ground-truth labels of the steps of one response.

    ``spans[i]`` is the ``[start, end)`` character span of step ``i`` in the response, so a segmenter can map steps
    to tokens; ``correct[i]`` says whether that step is right given the true problem. ``first_error`` is the index
    of the first wrong step (None when every step is right).
    """

    correct: tuple[bool, ...]
    spans: tuple[tuple[int, int], ...]

    @property
    def first_error(self) -> int | None:
        return next((i for i, ok in enumerate(self.correct) if not ok), None)

    @property
    def all_correct(self) -> bool:
        return bool(self.correct) and all(self.correct)


@runtime_checkable
class Task(Protocol):
    """What the trainer needs from a task."""

    name: str

    def sample(self, split: str, n: int, seed: int = 0, difficulty: int | None = None) -> list[Problem]:
        """``n`` problems of ``split`` ("train" or "test"), deterministic in ``seed``; ``difficulty=None`` mixes."""
        ...

    def verify(self, response: str, problem: Problem) -> float:
        """1.0 when the response's final answer is right, else 0.0."""
        ...

    def verify_batch(self, responses: Sequence[str], problems: Sequence[Problem], *, deadline_s: float) -> Any:
        """float32 ``[len(responses)]`` in {0, 1}, deadline-bounded: what trainers score rollouts with."""
        ...

    def check_steps(self, response: str, problem: Problem) -> StepCheck:
        """Per-step ground-truth labels (see ``StepCheck``)."""
        ...


def split_of(text: str, test_fraction: float) -> str:
    """Assign a problem to a split by hashing its text, so train and test are disjoint by construction.

    A stable hash (blake2b, not Python's salted ``hash``) keeps the assignment the same across processes and runs.
    """
    h = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")
    return "test" if h / 2**64 < test_fraction else "train"


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


_LINE = re.compile(r"[^\n]+")


def step_lines(response: str) -> list[tuple[str, tuple[int, int]]]:
    """Non-blank lines of a response with their character spans: the step boundaries of the built-in tasks."""
    return [(m.group(), m.span()) for m in _LINE.finditer(response) if m.group().strip()]


_REGISTRY: dict[str, Callable[..., Task]] = {}


def register_task(name: str) -> Callable[[Callable[..., Task]], Callable[..., Task]]:
    """Decorator registering a task factory under ``name`` (configs name tasks by string)."""

    def deco(factory: Callable[..., Task]) -> Callable[..., Task]:
        if name in _REGISTRY:
            raise ValueError(f"task {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def get_task(name: str, **kwargs: Any) -> Task:
    """Build the task registered as ``name``; keyword arguments go to its factory (e.g. ``data_dir``)."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown task {name!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[name](**kwargs)


def task_names() -> list[str]:
    return sorted(_REGISTRY)
