"""Wall-time helper shared by the benchmark scripts (run as `python benchmarks/NAME.py`, which puts this folder on
the import path)."""

from __future__ import annotations

import time


def best_time(fn, repeats: int) -> float:
    """Best wall time of `repeats` calls of fn, which must block until its result is ready (the run least disturbed
    by other load on the machine)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
