"""Multi-step arithmetic chains: ``a = 7; b = a * 3; c = b - 5; what is c?``.

Canonical solution, one step per derived variable, then the answer::

    b = 7 * 3 = 21
    c = 21 - 5 = 16
    #### 16

A step ``v = x op y = r`` is correct when ``r`` is the true value of ``v`` and the operands are the true values
(or names) of what ``v`` is defined from, so a step that carries an earlier mistake forward is wrong, and a later
step that recomputes from the true values is right again. The easiest level has two steps on one-digit constants
(about 80 characters of prompt and solution) so a tiny character-level model can learn it on CPU.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass

from nsa_jax.tasks.base import Problem, register_task
from nsa_jax.tasks.generated import NUMBER, GeneratedTask, apply_op, solution_text


@dataclass(frozen=True)
class ArithLevel:
    steps: int  # derived variables
    max_const: int  # constants are drawn from 1..max_const (multipliers from 2..min(max_const, 9))
    max_value: int  # every intermediate value stays in 0..max_value
    var_operands: bool  # whether a step may use an earlier variable as its right operand


ARITH_LEVELS = {
    1: ArithLevel(steps=2, max_const=9, max_value=99, var_operands=False),
    2: ArithLevel(steps=3, max_const=9, max_value=99, var_operands=False),
    3: ArithLevel(steps=4, max_const=20, max_value=999, var_operands=True),
    4: ArithLevel(steps=5, max_const=50, max_value=9999, var_operands=True),
    5: ArithLevel(steps=6, max_const=99, max_value=99999, var_operands=True),
}

_OPERAND = rf"({NUMBER[1:-1]}|[a-z])"
_STEP = re.compile(rf"\s*([a-z])\s*=\s*(?:{_OPERAND}\s*([-+*])\s*{_OPERAND}\s*=\s*)?{NUMBER}\s*\.?\s*")


class ArithTask(GeneratedTask):
    """Chains of ``+ - *`` on named variables; difficulty sets the chain length and the number ranges."""

    name = "arith"
    levels = tuple(ARITH_LEVELS)

    def generate(self, rng: random.Random, difficulty: int) -> Problem:
        level = ARITH_LEVELS[difficulty]
        names = string.ascii_lowercase[: level.steps + 1]
        values = {names[0]: rng.randint(1, level.max_const)}
        defs: dict[str, list] = {}
        for k, var in enumerate(names[1:], start=1):
            left = names[k - 1]
            op, right, value = self._draw_step(rng, level, values, left, names[: k - 1])
            defs[var] = [left, op, right]
            values[var] = value
        target = names[-1]
        prompt = "; ".join(
            [f"{names[0]} = {values[names[0]]}", *(f"{v} = {a} {op} {b}" for v, (a, op, b) in defs.items())]
        )
        prompt += f"; what is {target}?"
        steps = [
            f"{v} = {values[a]} {op} {values[b] if isinstance(b, str) else b} = {values[v]}"
            for v, (a, op, b) in defs.items()
        ]
        return Problem(
            prompt=prompt,
            answer=str(values[target]),
            difficulty=difficulty,
            solution=solution_text(steps, values[target]),
            steps=tuple(steps),
            task=self.name,
            meta={"values": values, "defs": defs},
        )

    @staticmethod
    def _draw_step(
        rng: random.Random, level: ArithLevel, values: dict[str, int], left: str, earlier: str
    ) -> tuple[str, int | str, int]:
        """Draw ``(op, right operand, value)`` keeping the value in range; ``+ 1`` if nothing fits."""
        x = values[left]
        for _ in range(100):
            op = rng.choice("+-*")
            if level.var_operands and earlier and rng.random() < 1 / 3:
                right: int | str = rng.choice(earlier)
                y = values[right]
            elif op == "*":
                right = y = rng.randint(2, min(level.max_const, 9))
            else:
                right = y = rng.randint(1, level.max_const)
            value = apply_op(x, op, y)
            if 0 <= value <= level.max_value:
                return op, right, value
        return "+", 1, x + 1

    def step_ok(self, line: str, problem: Problem) -> bool:
        m = _STEP.fullmatch(line)
        if not m:
            return False
        var, lhs, op, rhs, result = m.groups()
        values: dict[str, int] = problem.meta["values"]
        if var not in values or int(result) != values[var]:
            return False
        if lhs is None:  # a bare restatement "c = 16"
            return True
        shown = [values.get(s) if s.isalpha() else int(s) for s in (lhs, rhs)]
        if None in shown or apply_op(shown[0], op, shown[1]) != int(result):
            return False
        if var not in problem.meta["defs"]:  # restating a given through arithmetic
            return True
        t_left, t_op, t_right = problem.meta["defs"][var]
        truth = [values[t_left], values[t_right] if isinstance(t_right, str) else t_right]
        return op == t_op and (shown == truth or (op in "+*" and shown == truth[::-1]))


@register_task("arith")
def make_arith() -> ArithTask:
    return ArithTask()
