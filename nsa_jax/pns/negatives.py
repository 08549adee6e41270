"""Sources of negatives for preference learning and how plausible each is (PNS, ALGORITHMS.md section 4).

Three sources, each a wrong answer per prompt, paired with the same verified-correct response of the policy:
- "pns": the negative generator's samples, kept when verified wrong;
- "rejection": the policy's own samples, kept when verified wrong (rejection sampling);
- "random": a wrong answer of the policy to another prompt (so it is off-topic for this one).
`build_pairs` keeps only the prompts every source can serve, so each source gets the same prompts and the same
number of pairs. `plausibility` measures what makes a negative plausible: the format gate's pass rate, the reward
model's score against the correct answers' score (the paper's Fig. 1: PNS negatives +3.34, correct +3.21,
rejection-sampled -3.13), the share of steps before the first error that are right (the task's step checker), and
the length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from nsa_jax import tasks
from nsa_jax.pns.reward import format_ok

SOURCES = ("pns", "rejection", "random")
Responses = Sequence[Sequence[str]]  # per prompt, its responses


def split_by_rewards(
    responses: Sequence[str], rewards: np.ndarray, group_size: int
) -> tuple[list[list[str]], list[list[str]]]:
    """(correct, wrong) responses per prompt of a group-major batch, by its verifier rewards (above 0.5: right)."""
    right, wrong = [], []
    for q in range(len(responses) // group_size):
        rows = range(q * group_size, (q + 1) * group_size)
        right.append([responses[i] for i in rows if rewards[i] > 0.5])
        wrong.append([responses[i] for i in rows if rewards[i] <= 0.5])
    return right, wrong


def random_negatives(wrong: Sequence[Sequence[str]], seed: int) -> list[list[str]]:
    """For each prompt, one wrong answer of another prompt (drawn with `seed`); [] when no other prompt has one."""
    rng = np.random.default_rng(seed)
    owners = [q for q, ws in enumerate(wrong) for _ in ws]
    pool = [w for ws in wrong for w in ws]
    out = []
    for q in range(len(wrong)):
        others = [i for i, o in enumerate(owners) if o != q]
        out.append([pool[others[int(rng.integers(len(others)))]]] if others else [])
    return out


def build_pairs(
    problems: Sequence[tasks.Problem],
    chosen: Sequence[Sequence[str]],
    negatives: dict[str, Sequence[Sequence[str]]],
    prompt_of: Callable[[tasks.Problem], str] = lambda p: p.prompt,
) -> dict[str, list[dict[str, str]]]:
    """`{source: [{"prompt", "chosen", "rejected"}, ...]}`: one pair per prompt that has a correct response and a
    negative from every source, the first correct response against each source's first negative."""
    out: dict[str, list[dict[str, str]]] = {s: [] for s in negatives}
    for q, p in enumerate(problems):
        if not chosen[q] or any(not negatives[s][q] for s in negatives):
            continue
        for s in negatives:
            out[s].append({"prompt": prompt_of(p), "chosen": chosen[q][0], "rejected": negatives[s][q][0]})
    return out


def correct_prefix_share(task: tasks.Task, problem: tasks.Problem, response: str) -> float:
    """The share of a response's steps, before its first wrong one, that are right: the number of leading correct
    steps over the number of steps (1 for a response without a wrong step, 0 for one without steps)."""
    labels = task.check_steps(response, problem).correct
    if not labels:
        return 0.0
    first_wrong = next((k for k, ok in enumerate(labels) if not ok), len(labels))
    return first_wrong / len(labels)


def plausibility(
    task: tasks.Task,
    pairs: Sequence[dict[str, str]],
    problems_by_prompt: dict[str, tasks.Problem],
    rm_scores: Callable[[Sequence[tasks.Problem], Sequence[str]], np.ndarray],
    *,
    style: str = "hash",
) -> dict[str, float]:
    """How plausible a source's negatives are (`pairs` of one source): format pass rate, mean reward-model score of
    the negatives and of the correct answers they are paired with, the mean share of correct steps before the first
    error, and the mean length in characters (negatives and correct answers)."""
    if not pairs:
        return {"pairs": 0.0}
    problems = [problems_by_prompt[x["prompt"]] for x in pairs]
    rejected, chosen = [x["rejected"] for x in pairs], [x["chosen"] for x in pairs]
    return {
        "pairs": float(len(pairs)),
        "format_pass": float(np.mean([format_ok(r, style=style) for r in rejected])),
        "rm_negative": float(np.mean(rm_scores(problems, rejected))),
        "rm_correct": float(np.mean(rm_scores(problems, chosen))),
        "correct_steps_before_error": float(
            np.mean([correct_prefix_share(task, p, r) for p, r in zip(problems, rejected, strict=True)])
        ),
        "length_negative": float(np.mean([len(r) for r in rejected])),
        "length_correct": float(np.mean([len(c) for c in chosen])),
    }
