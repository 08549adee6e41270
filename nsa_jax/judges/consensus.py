"""Combining step judges and measuring them against ground truth (BCPG-NSA stage 3, ALGORITHMS.md section 3.2).

Each judge labels every step of a wrong response correct or not. `combine` turns the LLM judge's and the PRM
judge's labels into the labels NSA mines, by mode: "consensus" (a step is correct only when both say so, the
paper's choice [secondary]), "or", "llm", "prm", and "oracle" (the task's ground truth, an upper bound only the
built-in tasks allow). `judge_report` scores each mode's mined steps against the ground truth on wrong responses:
precision (of the steps mined, the share truly correct), recall (of the truly correct steps, the share mined) and
the number of tokens mined, the `judge_report.json` contract of DESIGN.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import numpy as np

MODES = ("consensus", "or", "llm", "prm", "oracle")
Labels = Sequence[Sequence[bool]]  # per response, per step
# How the LLM judge's label x and the PRM judge's label y of one step combine, by mode.
_PICK = {
    "consensus": lambda x, y: x and y,
    "or": lambda x, y: x or y,
    "llm": lambda x, y: x,
    "prm": lambda x, y: y,
}


def combine(mode: str, *, llm: Labels, prm: Labels, oracle: Labels | None = None) -> list[list[bool]]:
    """The step labels of `mode` (see the module docstring); responses whose judges disagree on the number of
    steps are an error (they must label the same segmentation)."""
    if mode not in MODES:
        raise ValueError(f"judge mode {mode!r} is not one of {MODES}")
    if mode == "oracle":
        if oracle is None:
            raise ValueError("judge mode 'oracle' needs the ground-truth labels")
        return [list(map(bool, x)) for x in oracle]
    out = []
    for i, (a, b) in enumerate(zip(llm, prm, strict=True)):
        if len(a) != len(b):
            raise ValueError(f"response {i}: the LLM judge labelled {len(a)} steps, the PRM judge {len(b)}")
        out.append([bool(_PICK[mode](x, y)) for x, y in zip(a, b)])
    return out


def judge_metrics(mined: Labels, truth: Labels, step_tokens: Sequence[Sequence[int]]) -> dict[str, float]:
    """Precision and recall of `mined` steps against `truth` over all steps of the given (wrong) responses, the
    tokens and steps mined (`step_tokens[i][k]`: tokens in step k of response i), and the accuracy of the labels
    over all steps. Precision is 1 when nothing is mined (no false positive), recall 1 when nothing is truly
    correct, accuracy 1 when there is no step."""
    tp = fp = fn = tokens = steps = 0
    for i, (m, t, n) in enumerate(zip(mined, truth, step_tokens, strict=True)):
        if not len(m) == len(t) == len(n):
            raise ValueError(f"response {i}: {len(m)} mined labels, {len(t)} true labels, {len(n)} step lengths")
        for mk, tk, nk in zip(m, t, n):
            tp += bool(mk and tk)
            fp += bool(mk and not tk)
            fn += bool(tk and not mk)
            tokens += int(nk) if mk else 0
            steps += 1
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "mined_tokens": float(tokens),
        "mined_steps": float(tp + fp),
        "accuracy": (steps - fp - fn) / steps if steps else 1.0,
    }


def judge_report(
    labels: Mapping[str, Labels], truth: Labels, step_tokens: Sequence[Sequence[int]], path: str | None = None
) -> dict[str, dict[str, float]]:
    """`judge_metrics` of every mode in `labels` (a mode -> labels mapping, e.g. from `combine`), written as JSON
    to `path` when given (`<workdir>/judge_report.json`)."""
    report = {mode: judge_metrics(mined, truth, step_tokens) for mode, mined in labels.items()}
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return report


def step_token_counts(step_ids: np.ndarray, steps: int) -> list[int]:
    """Tokens in each of `steps` steps of one response, from its per-token step ids."""
    ids = np.asarray(step_ids)
    return [int((ids == k).sum()) for k in range(steps)]
