"""Shared machinery of the built-in tasks generated in code: seeded sampling, splits, verification, step labels.

A built-in task only says how to generate one problem of a given difficulty and whether one line of a response is
a correct step; sampling (deterministic from the seed, train/test disjoint by hashing the prompt), final-answer
verification and the per-step labelling of whole responses are the same for all of them.
"""

from __future__ import annotations

import abc
import random
import re

from nsa_jax.tasks.answers import MAX_RESPONSE_CHARS, as_number, clean_text
from nsa_jax.tasks.base import Problem, StepCheck, check_split, split_of, step_lines
from nsa_jax.tasks.verify import ReferenceAnswerTask

ANSWER_PREFIX = "#### "
_ANSWER_LINE = re.compile(r"\s*####\s*(\S.*?)\s*")
NUMBER = r"(-?\d{1,12})"  # step regexes accept at most 12 digits, so int() of model output stays cheap


def apply_op(x: int, op: str, y: int) -> int:
    """The three operations the built-in tasks use (parsed by regex, never evaluated)."""
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    raise ValueError(f"unknown operation {op!r}")


class GeneratedTask(ReferenceAnswerTask, abc.ABC):
    """A task whose problems are generated in code and whose steps can be checked against the truth."""

    name: str = ""
    levels: tuple[int, ...] = ()
    test_fraction: float = 0.1  # share of the problem space (by prompt hash) held out for the test split

    @abc.abstractmethod
    def generate(self, rng: random.Random, difficulty: int) -> Problem:
        """One problem of the given difficulty, drawn with ``rng`` only (so sampling is deterministic)."""

    @abc.abstractmethod
    def step_ok(self, line: str, problem: Problem) -> bool:
        """Whether one response line is a correct step of ``problem`` (computed from the true values)."""

    def sample(self, split: str, n: int, seed: int = 0, difficulty: int | None = None) -> list[Problem]:
        """``n`` problems of ``split``; repeats are possible when the level's problem space is small."""
        check_split(split)
        if difficulty is not None and difficulty not in self.levels:
            raise ValueError(f"task {self.name!r}: difficulty must be one of {self.levels}, got {difficulty!r}")
        rng = random.Random(f"{self.name}:{split}:{seed}:{difficulty}")
        out: list[Problem] = []
        budget = 200 * n + 1000  # the test split keeps ~10% of draws; this bound only stops a broken generator
        while len(out) < n:
            budget -= 1
            if budget < 0:
                raise RuntimeError(f"task {self.name!r}: could not draw {n} {split} problems")
            level = difficulty if difficulty is not None else rng.choice(self.levels)
            problem = self.generate(rng, level)
            if split_of(problem.prompt, self.test_fraction) == split:
                out.append(problem)
        return out

    def check_steps(self, response: str, problem: Problem) -> StepCheck:
        """Label every non-blank line: the final ``#### x`` line is right iff ``x`` is the answer; any other line
        is right iff ``step_ok`` says so (lines that are not a recognisable step are wrong: they cannot be checked).
        """
        text = clean_text(response)[:MAX_RESPONSE_CHARS]
        lines = step_lines(text)
        correct = tuple(self._line_ok(line, problem) for line, _ in lines)
        return StepCheck(correct=correct, spans=tuple(span for _, span in lines))

    def _line_ok(self, line: str, problem: Problem) -> bool:
        m = _ANSWER_LINE.fullmatch(line)
        if m:
            value = as_number(m.group(1))
            return value is not None and value == as_number(problem.answer)
        return self.step_ok(line, problem)


def solution_text(steps: list[str], answer: int) -> str:
    """The canonical solution layout: one step per line, then ``#### answer``."""
    return "\n".join([*steps, f"{ANSWER_PREFIX}{answer}"])
