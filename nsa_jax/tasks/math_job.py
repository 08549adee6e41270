"""The job the verifier workers run: math-verify equivalence of two extracted answers.

Lives in its own module so the fork server can preload it (math-verify imports sympy, about a second) and so it is
only ever imported inside a worker process, never in the trainer.
"""

from __future__ import annotations

import math_verify


def math_equal(gold: str, pred: str, timeout_s: int) -> bool:
    """Whether ``pred`` is mathematically equivalent to ``gold`` according to math-verify.

    Both are wrapped in ``\\boxed{}`` so math-verify reads them as LaTeX answers (its LaTeX path does not evaluate
    Python syntax). ``timeout_s`` feeds math-verify's own signal-based timeouts; the pool's kill is the hard bound.
    """
    parsed_gold = math_verify.parse(f"\\boxed{{{gold}}}", parsing_timeout=timeout_s)
    parsed_pred = math_verify.parse(f"\\boxed{{{pred}}}", parsing_timeout=timeout_s)
    if not parsed_gold or not parsed_pred:
        return False
    return bool(math_verify.verify(parsed_gold, parsed_pred, timeout_seconds=timeout_s))


# Warm math-verify's lazily built parsers once at import: this module is preloaded in the fork server, so every
# worker forked from it (including replacements of killed ones) starts hot instead of paying ~1 s on its first item.
math_equal("\\frac{x}{2}+1", "1+0.5x", 5)
