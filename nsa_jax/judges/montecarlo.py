"""Monte-Carlo step labels, for tasks without a ground-truth step checker (the PRM's training labels there): step k
of a response is correct when at least one of M completions sampled after its prefix (the prompt, then the
response up to the end of step k) reaches the reference answer (Math-Shepherd's "hard" estimate, Wang et al. 2024,
arXiv 2312.08935). The last step holds the answer itself, so its label is the response's own correctness.

`complete(prompts, n)` samples `n` completions of each prompt text; `sampler_completions` builds it on the in-JAX
sampler, and tests pass a scripted one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from nsa_jax import rollouts, tasks

Complete = Callable[[Sequence[str], int], list[list[str]]]  # prompt texts, n -> n completions per prompt


def mc_step_labels(
    problems: Sequence[tasks.Problem],
    responses: Sequence[str],
    spans: Sequence[Sequence[tuple[int, int]]],
    *,
    complete: Complete,
    verify: rollouts.RewardFn,
    samples: int,
    prompt_fn: Callable[[str], str],
) -> list[list[bool]]:
    """Labels of each response's steps (`spans[i]`: character spans of response `i`'s steps, in order): a step
    before the last is correct when some of `samples` completions after its prefix reach the answer (by `verify`,
    the task's verifier); the last step is correct when the response is."""
    queries, owners = [], []
    for i, (problem, text, steps) in enumerate(zip(problems, responses, spans, strict=True)):
        for k, (_, end) in enumerate(steps[:-1]):
            queries.append(prompt_fn(problem.prompt) + text[:end] + "\n")
            owners.append((i, k))
    completions = complete(queries, samples) if queries else []
    checked = [problems[i] for i, _ in owners for _ in range(samples)]
    flat = [c for cs in completions for c in cs]
    reached = np.asarray(verify(checked, flat)).reshape(len(queries), samples).any(axis=1) if queries else []
    own = np.asarray(verify(list(problems), list(responses))) > 0.5
    labels = [[False] * len(s) for s in spans]
    for (i, k), ok in zip(owners, reached, strict=True):
        labels[i][k] = bool(ok)
    for i, steps in enumerate(spans):
        if steps:
            labels[i][-1] = bool(own[i])
    return labels


def sampler_completions(
    model: Any,
    tokenizer: Any,
    *,
    max_prompt_len: int,
    max_new_tokens: int,
    prompts_per_call: int,
    key: jax.Array,
    temperature: float = 1.0,
    mesh: Any = None,
) -> Complete:
    """`complete` on the in-JAX sampler: `prompts_per_call` prompts a call (the last call padded with repeats, so
    every call has one shape), keys folded in by call."""

    def complete(prompts: Sequence[str], n: int) -> list[list[str]]:
        out: list[list[str]] = []
        for start in range(0, len(prompts), prompts_per_call):
            chunk = list(prompts[start : start + prompts_per_call])
            padded = chunk + [chunk[0]] * (prompts_per_call - len(chunk))
            _, texts = rollouts.sample_responses(
                model,
                tokenizer,
                padded,
                n=n,
                max_prompt_len=max_prompt_len,
                max_new_tokens=max_new_tokens,
                key=jax.random.fold_in(key, start),
                temperature=temperature,
                mesh=mesh,
            )
            out += [texts[q * n : (q + 1) * n] for q in range(len(chunk))]
        return out

    return complete
