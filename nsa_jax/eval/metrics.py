"""Evaluation metrics of ALGORITHMS.md section 5: unbiased pass@k, maj@k, accuracy by difficulty bucket.

numpy only. LENS and NSR report pass@k curves because the gains of negative-sample methods show at large k and on
hard prompts, so every metric here can be split by difficulty bucket.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np


def pass_at_k(n: np.ndarray | int, c: np.ndarray | int, k: int) -> np.ndarray:
    """Unbiased pass@k per prompt, ``1 - C(n-c, k) / C(n, k)`` (Chen et al. 2021), from ``n`` samples ``c`` correct.

    Computed as ``1 - prod_{i=n-c+1..n} (1 - k/i)``, which never forms the huge binomials. Requires ``k <= n``.
    """
    n, c = np.broadcast_arrays(np.asarray(n, np.int64), np.asarray(c, np.int64))
    if k < 1 or np.any(k > n):
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}, n={n.min() if n.size else n}")
    if np.any((c < 0) | (c > n)):
        raise ValueError("pass@k needs 0 <= c <= n")
    out = np.ones(n.shape, np.float64)
    for idx in np.ndindex(n.shape):
        ni, ci = int(n[idx]), int(c[idx])
        if ni - ci >= k:
            out[idx] = 1.0 - np.prod(1.0 - k / np.arange(ni - ci + 1, ni + 1, dtype=np.float64))
    return out


def pass_at_k_curve(correct: np.ndarray, ks: Sequence[int]) -> dict[int, float]:
    """Mean pass@k over prompts for each ``k``; ``correct`` is ``[Q, n]`` in {0, 1} (n samples per prompt)."""
    correct = np.asarray(correct)
    if correct.ndim != 2:
        raise ValueError(f"correct must be [Q, n], got shape {correct.shape}")
    n, c = correct.shape[1], (correct > 0).sum(axis=1)
    return {k: float(pass_at_k(n, c, k).mean()) for k in ks}


def majority_vote(answers: Sequence[Hashable | None]) -> int | None:
    """Index of the first sample holding the most frequent non-None answer (ties go to the earliest answer)."""
    counts: dict[Hashable, int] = {}
    first: dict[Hashable, int] = {}
    for j, a in enumerate(answers):
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
            first.setdefault(a, j)
    if not counts:
        return None
    best = max(counts, key=lambda a: (counts[a], -first[a]))
    return first[best]


def maj_at_k(answers: Sequence[Sequence[Hashable | None]], correct: np.ndarray, k: int) -> float:
    """maj@k: share of prompts whose majority answer among their first ``k`` samples is correct.

    ``answers[q][j]`` is the extracted (normalised) final answer of sample j of prompt q, None when there is none;
    ``correct`` is ``[Q, n]``. A prompt with no answer at all counts as wrong.
    """
    correct = np.asarray(correct)
    if len(answers) != correct.shape[0]:
        raise ValueError(f"{len(answers)} answer lists but correct has {correct.shape[0]} rows")
    if k < 1 or k > correct.shape[1]:
        raise ValueError(f"maj@k needs 1 <= k <= n={correct.shape[1]}, got {k}")
    hits = []
    for q, row in enumerate(answers):
        j = majority_vote(list(row)[:k])
        hits.append(j is not None and bool(correct[q, j]))
    return float(np.mean(hits)) if hits else 0.0


def accuracy_by_bucket(correct: np.ndarray, buckets: Sequence[Hashable]) -> dict[Hashable, tuple[float, int]]:
    """Mean of ``correct`` (``[N]``, or ``[N, n]`` averaged per row first) within each bucket: ``{b: (acc, count)}``."""
    correct = np.asarray(correct, np.float64)
    per_item = correct.mean(axis=1) if correct.ndim == 2 else correct
    if per_item.shape[0] != len(buckets):
        raise ValueError(f"{per_item.shape[0]} items but {len(buckets)} buckets")
    return {b: (float(per_item[sel].mean()), int(sel.sum())) for b, sel in _bucket_masks(buckets).items()}


def pass_at_k_by_bucket(
    correct: np.ndarray, buckets: Sequence[Hashable], ks: Sequence[int]
) -> dict[Hashable, dict[int, float]]:
    """``pass_at_k_curve`` within each difficulty bucket (gains on hard prompts hide in the overall mean)."""
    correct = np.asarray(correct)
    if correct.shape[0] != len(buckets):
        raise ValueError(f"{correct.shape[0]} prompts but {len(buckets)} buckets")
    return {b: pass_at_k_curve(correct[sel], ks) for b, sel in _bucket_masks(buckets).items()}


def _bucket_masks(buckets: Sequence[Hashable]) -> dict[Hashable, np.ndarray]:
    return {b: np.array([x == b for x in buckets]) for b in sorted(set(buckets), key=repr)}
