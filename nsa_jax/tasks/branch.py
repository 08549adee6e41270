"""Branching programs: a value updated several times by an if/else rule.

Prompt and canonical solution (easiest level)::

    n = 7; 2 times: if n > 5 then n -= 2 else n *= 3; what is n?
    7 > 5: n = 7 - 2 = 5
    5 <= 5: n = 5 * 3 = 15
    #### 15

Each step must first choose the branch (a comparison or a parity test, stated explicitly) and then apply it, so
errors come in two kinds: a wrong branch choice and a wrong computation. A step is correct when it applies the rule
correctly to a value on the true trajectory; a step starting from a wrong value (one that builds on an earlier
error) is wrong, and a step that goes back to a true value and applies the rule correctly is right again. Every
problem takes both branches at least once.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass

from nsa_jax.tasks.base import Problem, register_task
from nsa_jax.tasks.generated import NUMBER, GeneratedTask, apply_op, solution_text


@dataclass(frozen=True)
class BranchLevel:
    repeats: int  # applications of the rule
    max_start: int  # start value drawn from 1..max_start
    max_const: int  # added/subtracted constants from 1..max_const, multipliers from 2..3
    max_value: int  # every value on the trajectory stays in 0..max_value
    parity: bool  # whether "n is even" conditions appear next to "n > t"


BRANCH_LEVELS = {
    1: BranchLevel(repeats=2, max_start=9, max_const=9, max_value=99, parity=False),
    2: BranchLevel(repeats=3, max_start=20, max_const=9, max_value=99, parity=True),
    3: BranchLevel(repeats=4, max_start=50, max_const=20, max_value=999, parity=True),
    4: BranchLevel(repeats=5, max_start=99, max_const=50, max_value=999, parity=True),
    5: BranchLevel(repeats=6, max_start=99, max_const=99, max_value=9999, parity=True),
}

_STEP = re.compile(
    rf"\s*{NUMBER}\s*(?:(>|<=)\s*{NUMBER}|is\s+(even|odd))\s*:\s*n\s*=\s*{NUMBER}\s*([-+*])\s*{NUMBER}"
    rf"\s*=\s*{NUMBER}\s*\.?\s*"
)


def _holds(cond: list, x: int) -> bool:
    kind, threshold = cond
    return x % 2 == 0 if kind == "even" else x > threshold


def _claim(cond: list, x: int) -> str:
    """How the canonical solution states the branch decision for value ``x``."""
    kind, threshold = cond
    if kind == "even":
        return f"{x} is {'even' if x % 2 == 0 else 'odd'}"
    return f"{x} > {threshold}" if x > threshold else f"{x} <= {threshold}"


class BranchTask(GeneratedTask):
    """``k times: if <cond> then n op= c else n op= c``; difficulty sets k and the number ranges."""

    name = "branch"
    levels = tuple(BRANCH_LEVELS)

    def generate(self, rng: random.Random, difficulty: int) -> Problem:
        level = BRANCH_LEVELS[difficulty]
        while True:  # rejection: values in range and both branches taken; accepts within a few draws
            start = rng.randint(1, level.max_start)
            if level.parity and rng.random() < 0.5:
                cond = ["even", 0]
            else:
                cond = [">", rng.randint(1, level.max_start)]
            rules = [self._draw_rule(rng, level), self._draw_rule(rng, level)]
            states = [start]
            for _ in range(level.repeats):
                op, c = rules[0] if _holds(cond, states[-1]) else rules[1]
                states.append(apply_op(states[-1], op, c))
            taken = {_holds(cond, x) for x in states[:-1]}
            if len(taken) == 2 and all(0 <= x <= level.max_value for x in states):
                break
        test = "n is even" if cond[0] == "even" else f"n > {cond[1]}"
        (op_t, c_t), (op_f, c_f) = rules
        prompt = f"n = {start}; {level.repeats} times: if {test} then n {op_t}= {c_t} else n {op_f}= {c_f}; what is n?"
        steps = []
        for x, y in itertools.pairwise(states):
            op, c = rules[0] if _holds(cond, x) else rules[1]
            steps.append(f"{_claim(cond, x)}: n = {x} {op} {c} = {y}")
        return Problem(
            prompt=prompt,
            answer=str(states[-1]),
            difficulty=difficulty,
            solution=solution_text(steps, states[-1]),
            steps=tuple(steps),
            task=self.name,
            meta={"cond": cond, "if_true": list(rules[0]), "if_false": list(rules[1]), "states": states},
        )

    @staticmethod
    def _draw_rule(rng: random.Random, level: BranchLevel) -> tuple[str, int]:
        op = rng.choice("+-*")
        return (op, rng.randint(2, 3)) if op == "*" else (op, rng.randint(1, level.max_const))

    def step_ok(self, line: str, problem: Problem) -> bool:
        m = _STEP.fullmatch(line)
        if not m:
            return False
        x, sym, threshold, parity, x2, op, c, result = m.groups()
        meta = problem.meta
        x = int(x)
        if x not in meta["states"][:-1] or int(x2) != x:
            return False
        cond = meta["cond"]
        holds = _holds(cond, x)
        if cond[0] == "even":
            claim_ok = parity is not None and (parity == "even") == holds
        else:
            claim_ok = sym is not None and int(threshold) == cond[1] and (sym == ">") == holds
        true_op, true_c = meta["if_true"] if holds else meta["if_false"]
        return claim_ok and op == true_op and int(c) == true_c and int(result) == apply_op(x, op, true_c)


@register_task("branch")
def make_branch() -> BranchTask:
    return BranchTask()
