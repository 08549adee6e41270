"""Held-out evaluation during RL: pass@1 and pass@k (unbiased estimator, ALGORITHMS.md section 5) by difficulty.

`n` responses are sampled per test problem (at the eval temperature) and verified; pass@k uses Chen et al.'s
unbiased estimator from those `n`, so pass@1 is the mean per-sample accuracy. Negative-sample methods are expected
to show their gains at large k and on the hardest problems, so both are reported overall and per level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from nsa_jax import rollouts, tasks
from nsa_jax.eval import pass_at_k_by_bucket, pass_at_k_curve


def problems_by_level(
    task: Any, split: str, difficulties: Sequence[int], per_level: int, seed: int
) -> list[tasks.Problem]:
    """`per_level` problems of `split` for each level in `difficulties` (0 = the task's own mix of levels)."""
    out: list[tasks.Problem] = []
    for level in difficulties:
        out += task.sample(split, per_level, seed=seed, difficulty=level or None)
    return out


def evaluate(
    model: Any,
    tokenizer: Any,
    problems: Sequence[tasks.Problem],
    *,
    samples: int,
    ks: Sequence[int],
    batch_size: int,
    key: jax.Array,
    prompt_fn: Callable[[str], str],
    reward_fn: rollouts.RewardFn,
    **sample_kwargs: Any,
) -> dict[str, float]:
    """`{"pass@k": ..., "pass@k/d<level>": ...}` for every k in `ks` (each <= `samples`).

    Correctness is `reward_fn` above 0.5 (the task's verifier). `batch_size` prompts go to the sampler at a time (each with `samples` responses); the last chunk is padded
    with repeats of the first problem so every call has the same shape, and the padding is dropped.
    """
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
    correct = np.concatenate(correct)  # [num_problems, samples]
    levels = [p.difficulty for p in problems]
    out = {f"pass@{k}": v for k, v in pass_at_k_curve(correct, ks).items()}
    for level, curve in pass_at_k_by_bucket(correct, levels, ks).items():
        out.update({f"pass@{k}/d{level}": v for k, v in curve.items()})
    return out
