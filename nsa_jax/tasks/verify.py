"""Batch answer verification: cheap checks in the caller, math-verify in sandboxed workers, hard deadlines.

The reward of every RL step goes through ``verify_answers``, so it must be fast in the common case and bounded in
the worst. Order of work per item:

1. extract the final answer from the (truncated) response; none -> 0;
2. fast path: equal normalised strings -> 1; both plain numbers -> exact rational comparison (no worker);
3. pre-checks: answers that are too long, too deeply nested or look like code -> 0 without a worker;
4. the rest goes to ``math_job.math_equal`` in the worker pool, with a per-item and a per-batch deadline; a
   timeout, crash or error scores 0 and is counted in ``verifier_stats()``.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from nsa_jax.tasks.answers import as_number, clean_text, extract_answer, looks_hostile, normalize_answer
from nsa_jax.tasks.pool import CRASH, OK, TIMEOUT, WorkerPool


@dataclasses.dataclass
class VerifyStats:
    """How items were decided, summed over all calls since the last ``reset_verifier_stats()``."""

    items: int = 0
    no_answer: int = 0  # no extractable final answer (scored 0)
    fast: int = 0  # decided by string or number comparison in the caller
    rejected: int = 0  # refused by the pre-checks (scored 0)
    worker: int = 0  # sent to math-verify
    timeouts: int = 0  # per-item or per-batch deadline passed (scored 0)
    crashes: int = 0  # worker died mid-item (scored 0)
    errors: int = 0  # math-verify raised (scored 0)


_STATS = VerifyStats()
_LOCK = threading.Lock()
_POOL: WorkerPool | None = None


def verifier_stats() -> VerifyStats:
    """A copy of the counters."""
    with _LOCK:
        return dataclasses.replace(_STATS)


def reset_verifier_stats() -> None:
    global _STATS
    with _LOCK:
        _STATS = VerifyStats()


def get_verifier_pool() -> WorkerPool:
    """The shared math-verify pool: made on first use, reused, closed at exit.

    Size: ``NSA_JAX_VERIFY_WORKERS`` or min(2, CPUs), since verification is a small share of a training step.
    """
    global _POOL
    with _LOCK:
        if _POOL is None or _POOL.closed:
            n = int(os.environ.get("NSA_JAX_VERIFY_WORKERS", min(2, os.cpu_count() or 1)))
            _POOL = WorkerPool(n, preload=("nsa_jax.tasks.math_job",), server_preload=True)
            atexit.register(_POOL.close)
        return _POOL


def shutdown_verifier_pool() -> None:
    """Stop the workers now (a later call makes a new pool)."""
    global _POOL
    with _LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.close()


def reference_answer(reference: str | bytes) -> str | None:
    """The gold answer: extracted when the reference is a whole solution (``#### x`` or ``\\boxed{}``)."""
    text = clean_text(reference)
    if "####" in text or "\\boxed" in text or "\\fbox" in text:
        return extract_answer(text)
    return text.strip() or None


def fast_decision(pred: str, gold: str) -> float | None:
    """1/0 when string or exact-number comparison settles it, None when math-verify is needed."""
    if normalize_answer(pred) == normalize_answer(gold):
        return 1.0
    a, b = as_number(pred), as_number(gold)
    if a is not None and b is not None:
        return float(a == b)
    return None


def verify_answers(
    responses: Sequence[str | bytes],
    references: Sequence[str | bytes],
    *,
    deadline_s: float = 5.0,
    item_deadline_s: float | None = None,
) -> np.ndarray:
    """Score each response against its reference: float32 ``[len(responses)]`` in {0, 1}.

    Returns within about ``deadline_s`` whatever the input (plus the time to kill a hung worker);
    ``item_deadline_s`` (default ``min(deadline_s, 3)``) bounds each math-verify call.
    """
    if len(responses) != len(references):
        raise ValueError(f"{len(responses)} responses but {len(references)} references")
    start = time.monotonic()
    scores = np.zeros(len(responses), np.float32)
    counts = VerifyStats(items=len(responses))
    jobs: list[tuple[int, str, str]] = []
    for i, (response, reference) in enumerate(zip(responses, references)):
        pred, gold = extract_answer(response), reference_answer(reference)
        if pred is None or gold is None:
            counts.no_answer += 1
            continue
        decision = fast_decision(pred, gold)
        if decision is not None:
            scores[i] = decision
            counts.fast += 1
        elif looks_hostile(pred) or looks_hostile(gold):
            counts.rejected += 1
        else:
            jobs.append((i, gold, pred))
    if jobs:
        counts.worker = len(jobs)
        item_s = min(deadline_s, 3.0) if item_deadline_s is None else item_deadline_s
        results = get_verifier_pool().map(
            "nsa_jax.tasks.math_job:math_equal",  # by name: sympy is imported in the workers only
            [(gold, pred, max(1, int(item_s))) for _, gold, pred in jobs],
            item_deadline_s=item_s,
            deadline_s=max(0.0, deadline_s - (time.monotonic() - start)),
        )
        for (i, _, _), (status, value) in zip(jobs, results):
            scores[i] = float(status == OK and value is True)
            counts.timeouts += status == TIMEOUT
            counts.crashes += status == CRASH
            counts.errors += status not in (OK, TIMEOUT, CRASH)
    with _LOCK:
        for f in dataclasses.fields(VerifyStats):
            setattr(_STATS, f.name, getattr(_STATS, f.name) + getattr(counts, f.name))
    return scores


def verify_answer(response: str | bytes, reference: str | bytes, *, deadline_s: float = 5.0) -> float:
    """One item of ``verify_answers``."""
    return float(verify_answers([response], [reference], deadline_s=deadline_s)[0])


class ReferenceAnswerTask:
    """Mixin of the tasks scored by the final answer against ``problem.answer`` (``verify_answers``)."""

    def verify_batch(self, responses: Sequence[str], problems: Sequence[Any], *, deadline_s: float = 5.0) -> np.ndarray:
        """float32 ``[len(responses)]`` in {0, 1}, the whole batch within about ``deadline_s``."""
        return verify_answers(responses, [p.answer for p in problems], deadline_s=deadline_s)

    def verify(self, response: str, problem: Any) -> float:
        return float(self.verify_batch([response], [problem])[0])
