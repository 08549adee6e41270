"""Held-out evaluation during RL: pass@1 and pass@k (unbiased estimator, ALGORITHMS.md section 5) by difficulty.

`n` responses are sampled per test problem (at the eval temperature) and verified; pass@k uses Chen et al.'s
unbiased estimator from those `n`, so pass@1 is the mean per-sample accuracy. Negative-sample methods are expected
to show their gains at large k and on the hardest problems, so both are reported overall and per level.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from nsa_jax import rollouts, tasks
from nsa_jax.eval import paired_bootstrap, pass_at_k, pass_at_k_by_bucket, pass_at_k_curve


def problems_by_level(
    task: Any, split: str, difficulties: Sequence[int], per_level: int, seed: int
) -> list[tasks.Problem]:
    """`per_level` problems of `split` for each level in `difficulties` (0 = the task's own mix of levels)."""
    out: list[tasks.Problem] = []
    for level in difficulties:
        out += task.sample(split, per_level, seed=seed, difficulty=level or None)
    return out


def sample_correct(
    model: Any,
    tokenizer: Any,
    problems: Sequence[tasks.Problem],
    *,
    samples: int,
    batch_size: int,
    key: jax.Array,
    prompt_fn: Callable[[str], str],
    reward_fn: rollouts.RewardFn,
    **sample_kwargs: Any,
) -> np.ndarray:
    """`[num_problems, samples]` bool: whether each of `samples` responses per problem is correct (`reward_fn` above
    0.5, the task's verifier). `batch_size` prompts go to the sampler at a time (each with `samples` responses);
    the last chunk is padded with repeats of the first problem so every call has the same shape, and the padding is
    dropped."""
    correct = []
    for start in range(0, len(problems), batch_size):
        chunk = list(problems[start : start + batch_size])
        padded = chunk + [chunk[0]] * (batch_size - len(chunk))
        r = rollouts.collect(
            model,
            tokenizer,
            padded,
            group_size=samples,
            prompt_fn=prompt_fn,
            reward_fn=reward_fn,
            key=jax.random.fold_in(key, start),
            **sample_kwargs,
        )
        correct.append(r.rewards.reshape(batch_size, samples)[: len(chunk)] > 0.5)
    return np.concatenate(correct)


def metrics(correct: np.ndarray, levels: Sequence[int], ks: Sequence[int]) -> dict[str, float]:
    """`{"pass@k": ..., "pass@k/d<level>": ...}` for every k in `ks` from a `sample_correct` matrix."""
    out = {f"pass@{k}": v for k, v in pass_at_k_curve(correct, ks).items()}
    for level, curve in pass_at_k_by_bucket(correct, levels, ks).items():
        out.update({f"pass@{k}/d{level}": v for k, v in curve.items()})
    return out


# Per-problem results of each held-out evaluation, so two of them can be compared problem by problem.
def save_correct(path: str, correct: np.ndarray, levels: Sequence[int], fingerprint: str = "") -> None:
    """Writes a `sample_correct` matrix, the problems' levels and the evaluation's `fingerprint` (what decides its
    problems and sampling, `TaskSetting.fingerprint`) to `path` (.npz, atomically)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        np.savez(f, correct=correct, levels=np.asarray(levels, np.int32), fingerprint=np.asarray(fingerprint))
    os.replace(path + ".tmp", path)


def load_correct(path: str, fingerprint: str) -> tuple[np.ndarray, np.ndarray]:
    """The `(correct, levels)` a `save_correct` file holds; a file of another evaluation (other `fingerprint`) is an
    error naming it."""
    with np.load(path) as f:
        saved = str(f["fingerprint"]) if "fingerprint" in f else ""
        if saved != fingerprint:
            raise ValueError(f"{path} holds another held-out evaluation (other problems, samples or sampling)")
        return f["correct"], f["levels"]


def paired_gains(before_path: str, after_path: str, ks: Sequence[int]) -> dict[str, float]:
    """Gain of the evaluation in `after_path` over the one in `before_path` (same problems and sampling keys): for
    every k, `gain/pass@k` and its paired-bootstrap 95% interval over problems (`.../low`, `.../high`), overall and
    per level (`gain/pass@k/d<level>...`)."""
    with np.load(before_path) as b, np.load(after_path) as a:
        before, after, levels = b["correct"], a["correct"], b["levels"]
        if before.shape != after.shape or not np.array_equal(levels, a["levels"]):
            raise ValueError(f"{before_path} and {after_path} hold different evaluations")
    n = before.shape[1]
    out: dict[str, float] = {}
    groups = {"": np.ones(len(levels), bool), **{f"/d{d}": levels == d for d in sorted(set(levels.tolist()))}}
    for k in ks:
        per_before, per_after = pass_at_k(n, before.sum(axis=1), k), pass_at_k(n, after.sum(axis=1), k)
        for suffix, rows in groups.items():
            gain = paired_bootstrap(per_before[rows], per_after[rows])
            name = f"gain/pass@{k}{suffix}"
            out.update({name: gain.mean, f"{name}/low": gain.low, f"{name}/high": gain.high})
    return out
