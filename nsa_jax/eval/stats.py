"""Intervals for comparisons of held-out results (numpy only): a paired bootstrap over problems, for the gain of
one policy over another on the same problems and sampling keys, and a t-interval over seeds.

A gain measured on a few hundred problems is about one standard error of the mean when it is a few points; a fixed
margin near that size passes or fails by chance. The paired bootstrap resamples problems (each keeping its before
and after score together), so the interval reflects which problems happened to be drawn and the sampling noise of
each problem's score, and ignores the variation shared by both sides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.stats  # a dependency of jax


class Interval(NamedTuple):
    mean: float
    low: float
    high: float


def paired_bootstrap(
    before: Sequence[float] | np.ndarray,
    after: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    num_resamples: int = 10_000,
    seed: int = 0,
) -> Interval:
    """The mean of `after - before` over problems, with the percentile bootstrap interval at `confidence` from
    `num_resamples` resamples of the problems (with replacement), seeded so it repeats."""
    diff = np.asarray(after, np.float64) - np.asarray(before, np.float64)
    if diff.ndim != 1 or diff.size == 0 or np.shape(before) != np.shape(after):
        raise ValueError(f"before and after must be equal-length 1-D arrays, got {np.shape(before)}, {np.shape(after)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must lie in (0, 1)")
    rng = np.random.default_rng(seed)
    means = np.empty(num_resamples)
    for start in range(0, num_resamples, 1000):  # [1000, P] index blocks bound the memory
        count = min(1000, num_resamples - start)
        means[start : start + count] = diff[rng.integers(0, diff.size, size=(count, diff.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(float(diff.mean()), float(low), float(high))


def t_interval(values: Sequence[float] | np.ndarray, *, confidence: float = 0.95) -> Interval:
    """Mean of `values` (one per seed) with Student's t interval (n - 1 degrees of freedom); a single value gets
    `low = high = mean` (no interval can be had from one seed)."""
    x = np.asarray(values, np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {x.shape}")
    mean = float(x.mean())
    if x.size == 1:
        return Interval(mean, mean, mean)
    half = float(scipy.stats.t.ppf(0.5 + confidence / 2.0, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return Interval(mean, mean - half, mean + half)
