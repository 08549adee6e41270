"""The comparison report of several methods trained from one start: a table, PNG plots and `report.md`.

Its input is what every trainer leaves on disk: held-out evaluations as `[problems, samples]` correctness matrices
with the problems' levels (`.npz` files with `correct` and `levels`, as the trainers' `heldout/round_N.npz`), each
tagged with the number of responses the method had sampled when it was taken. Nothing here knows a trainer.

Figures, for each method (means over seeds):
- held-out pass@k (unbiased estimator) for every k in `ks`, overall and per level, after training;
- the gain in pass@1 over the start, with a 95% interval: over problems (paired bootstrap) with one seed, over seeds
  (Student t on the per-seed gains) with several;
- plots: pass@1 against responses sampled (one line per method), the pass@k curves after training, and the step
  judges' precision and recall by mode (from `judge_report.json`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from nsa_jax.eval.metrics import pass_at_k
from nsa_jax.eval.stats import Interval, paired_bootstrap, t_interval

START = "sft start"


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One held-out evaluation on disk, taken after the method had sampled `responses` responses."""

    responses: int
    path: str


@dataclasses.dataclass(frozen=True)
class MethodRun:
    """One method's run with one seed: its held-out evaluations in order, the first of the start policy."""

    method: str
    family: str
    seed: int
    evaluations: tuple[Evaluation, ...]


def load(path: str) -> tuple[np.ndarray, np.ndarray]:
    """`(correct [P, n] bool, levels [P])` of an evaluation file."""
    with np.load(path) as f:
        return f["correct"].astype(bool), f["levels"]


def per_problem(correct: np.ndarray, k: int) -> np.ndarray:
    """[P] each problem's unbiased pass@k from its `n` samples."""
    return pass_at_k(correct.shape[1], correct.sum(axis=1), k)


def scores(path: str, ks: Sequence[int]) -> dict[str, float]:
    """`pass@k` and `pass@k/d<level>` of one evaluation file, for every k in `ks`."""
    correct, levels = load(path)
    out = {}
    for k in ks:
        values = per_problem(correct, k)
        out[f"pass@{k}"] = float(values.mean())
        for level in sorted(set(levels.tolist())):
            out[f"pass@{k}/d{level}"] = float(values[levels == level].mean())
    return out


def paired(pairs: Sequence[tuple[str, str]], k: int) -> Interval:
    """pass@k of the second evaluation of each (before, after) pair of files minus the first's, one pair per seed,
    on the same problems: the mean with a 95% interval, a paired bootstrap over problems for one seed, a t interval
    over the seeds' differences for several."""
    values = [(per_problem(load(a)[0], k), per_problem(load(b)[0], k)) for a, b in pairs]
    if len(values) == 1:
        return paired_bootstrap(*values[0])
    return t_interval([float(after.mean() - before.mean()) for before, after in values])


def gain(runs: Sequence[MethodRun]) -> Interval:
    """pass@1 of each run's last evaluation over its first (the start's), with `paired`'s interval."""
    return paired([(r.evaluations[0].path, r.evaluations[-1].path) for r in runs], 1)


def by_method(runs: Sequence[MethodRun]) -> dict[str, list[MethodRun]]:
    """The runs grouped by method, in first-seen order."""
    out: dict[str, list[MethodRun]] = {}
    for r in runs:
        out.setdefault(r.method, []).append(r)
    return out


def summary(runs: Sequence[MethodRun], ks: Sequence[int]) -> dict[str, dict[str, Any]]:
    """Each method's row (and the start's, from the first method's first evaluations): the family, the seeds,
    the responses sampled, the mean over seeds of every `scores` value after training and the pass@1 gain with
    its interval (`gain/pass@1`, `.../low`, `.../high`)."""
    grouped = by_method(runs)
    rows: dict[str, dict[str, Any]] = {}
    first = next(iter(grouped.values()))
    starts = [scores(r.evaluations[0].path, ks) for r in first]
    rows[START] = {"family": "start", "seeds": len(first), "responses": 0, **_mean(starts)}
    for method, group in grouped.items():
        ends = [scores(r.evaluations[-1].path, ks) for r in group]
        g = gain(group)
        rows[method] = {
            "family": group[0].family,
            "seeds": len(group),
            "responses": int(np.mean([r.evaluations[-1].responses for r in group])),
            **_mean(ends),
            "gain/pass@1": g.mean,
            "gain/pass@1/low": g.low,
            "gain/pass@1/high": g.high,
        }
    return rows


def difference(runs: Sequence[MethodRun], baseline: Sequence[MethodRun], k: int) -> Interval:
    """pass@k after training of `runs` minus `baseline`'s (the same seeds, the same held-out problems), with
    `paired`'s interval."""
    if len(runs) != len(baseline):
        raise ValueError(f"{runs[0].method} has {len(runs)} seeds, {baseline[0].method} {len(baseline)}")
    ends = [(b.evaluations[-1].path, a.evaluations[-1].path) for a, b in zip(runs, baseline, strict=True)]
    return paired(ends, k)


def comparison_table(runs: Sequence[MethodRun], pairs: Sequence[tuple[str, str]], ks: Sequence[int]) -> str:
    """Markdown table of each (method, baseline) pair's `difference` at every k in `ks`."""
    grouped = by_method(runs)
    head = ["method - baseline", *(f"pass@{k} [95% CI]" for k in ks)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for method, base in pairs:
        cells = []
        for k in ks:
            d = difference(grouped[method], grouped[base], k)
            cells.append(f"{d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}]")
        lines.append(f"| {method} - {base} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean(values: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([v[k] for v in values])) for k in values[0]}


def levels_of(rows: dict[str, dict[str, Any]]) -> list[str]:
    """The level suffixes (`d1`, `d2`, ...) the rows' keys carry."""
    return sorted({key.split("/")[1] for row in rows.values() for key in row if key.startswith("pass@1/")})


def table(rows: dict[str, dict[str, Any]], k: int) -> str:
    """Markdown table: pass@1 and pass@k overall and per level, the responses sampled, the pass@1 gain."""
    keys = [f"pass@{kk}{suffix}" for suffix in ["", *(f"/{d}" for d in levels_of(rows))] for kk in (1, k)]
    head = ["method", "family", "responses", *(key.replace("/", " ") for key in keys), "pass@1 gain [95% CI]"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, r in rows.items():
        g = (
            "-"
            if "gain/pass@1" not in r
            else f"{r['gain/pass@1']:+.3f} [{r['gain/pass@1/low']:+.3f}, {r['gain/pass@1/high']:+.3f}]"
        )
        cells = [name, r["family"], str(r["responses"]), *(f"{r[key]:.3f}" for key in keys), g]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def judge_table(reports: Sequence[dict[str, Any]]) -> str:
    """Markdown table of `judge_report.json` files (means over seeds): precision, recall, mined tokens per mode."""
    modes = [m for m in reports[0] if isinstance(reports[0][m], dict) and "mined_tokens" in reports[0][m]]
    lines = ["| judge mode | precision | recall | mined tokens |", "| --- | --- | --- | --- |"]
    for mode in modes:
        cells = []
        for key, fmt in (("precision", "{:.3f}"), ("recall", "{:.3f}"), ("mined_tokens", "{:.0f}")):
            values = [r[mode][key] for r in reports if key in r.get(mode, {})]
            cells.append(fmt.format(np.mean(values)) if values else "-")
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plausibility_table(reports: Sequence[dict[str, Any]]) -> str:
    """Markdown table of PNS `plausibility.json` files (means over seeds): per source of negatives, the format pass
    rate, the reward-model score against the correct answers', the share of correct steps before the first error."""
    sources = [s for s in reports[0] if s != "counts"]
    keys = ("pairs", "format_pass", "rm_negative", "rm_correct", "correct_steps_before_error", "length_negative")
    lines = ["| negatives | " + " | ".join(k.replace("_", " ") for k in keys) + " |", "|" + " --- |" * (len(keys) + 1)]
    for source in sources:
        cells = [
            f"{np.mean([r[source][k] for r in reports]):.{0 if k == 'pairs' else 1 if k.startswith('length') else 3}f}"
            for k in keys
        ]
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


LINES = {"start": "-", "online": "-", "offline": "--", "preference": ":"}  # line style by family


def colours(names: Sequence[str]) -> dict[str, Any]:
    """One colour per method, the same in every plot: the start black, the others from a 20-colour map."""
    plt = _pyplot()
    others = [n for n in names if n != START]
    return {START: "black", **{n: plt.get_cmap("tab20")(2 * i % 20 + (2 * i // 20)) for i, n in enumerate(others)}}


def plot_learning(path: str, runs: Sequence[MethodRun]) -> None:
    """PNG: held-out pass@1 (mean over seeds) against responses sampled, one line per method."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    grouped = by_method(runs)
    colour = colours(list(grouped))
    for method, group in grouped.items():
        xs = [e.responses for e in group[0].evaluations]
        ys = [np.mean([scores(r.evaluations[i].path, (1,))["pass@1"] for r in group]) for i in range(len(xs))]
        ax.plot(xs, ys, marker="o", linestyle=LINES[group[0].family], color=colour[method], label=method)
    ax.set_xlabel("responses sampled")
    ax.set_ylabel("held-out pass@1")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    _save(fig, path)


def plot_pass_at_k(path: str, rows: dict[str, dict[str, Any]], ks: Sequence[int]) -> None:
    """PNG: held-out pass@k after training against k (log scale), one line per method and the start."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colour = colours(list(rows))
    for name, r in rows.items():
        style = {"linestyle": LINES[r["family"]], "color": colour[name], "linewidth": 2.5 if name == START else 1.2}
        ax.plot(ks, [r[f"pass@{k}"] for k in ks], marker="o", label=name, **style)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(ks), [str(k) for k in ks])
    ax.set_xlabel("k")
    ax.set_ylabel("held-out pass@k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    _save(fig, path)


def plot_judges(path: str, reports: Sequence[dict[str, Any]]) -> None:
    """PNG: the step judges' precision and recall by mode (means over seeds), grouped bars."""
    plt = _pyplot()
    modes = [m for m in reports[0] if isinstance(reports[0][m], dict) and "precision" in reports[0][m]]
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(modes))
    for i, key in enumerate(("precision", "recall")):
        ax.bar(x + (i - 0.5) * 0.38, [np.mean([r[m][key] for r in reports]) for m in modes], 0.38, label=key)
    ax.set_xticks(x, modes)
    ax.set_ylim(0, 1)
    ax.set_ylabel("against ground-truth step labels")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)


def write(
    directory: str,
    runs: Sequence[MethodRun],
    ks: Sequence[int],
    *,
    comparisons: Sequence[tuple[str, str]] = (),
    judge_reports: Sequence[dict[str, Any]] = (),
    sections: Sequence[str] = (),
) -> str:
    """Writes `report.md`, `results.json` and the PNG plots to `directory`; returns the markdown. `comparisons` are
    (method, baseline) pairs whose paired differences get a table; `sections` are extra markdown paragraphs
    appended after the figures. The files depend only on the inputs, so the same runs give the same report."""
    os.makedirs(directory, exist_ok=True)
    rows = summary(runs, ks)
    seeds = max(r["seeds"] for r in rows.values())
    interval = "paired bootstrap over problems" if seeds == 1 else f"t interval over {seeds} seeds"
    parts = [
        "# Held-out results",
        (
            f"Every method starts from the same SFT policy. Means over {seeds} seed(s); pass@1 gain over the start "
            f"with its 95% interval ({interval}). `responses`: responses the method's training data sampled."
        ),
        table(rows, max(ks)),
        "![held-out pass@1 against responses sampled](pass1_vs_responses.png)",
        "![held-out pass@k after training](pass_at_k.png)",
    ]
    if comparisons:
        parts += [
            "## Each method against its baseline",
            (
                "After training, on the same held-out problems with the same sampling keys (positive: the method "
                "is ahead). An interval that contains 0 is a difference within noise."
            ),
            comparison_table(runs, comparisons, (1, max(ks))),
        ]
    plot_learning(os.path.join(directory, "pass1_vs_responses.png"), runs)
    plot_pass_at_k(os.path.join(directory, "pass_at_k.png"), rows, ks)
    if judge_reports:
        parts += ["## Step judges (BCPG-NSA)", judge_table(judge_reports), "![judge precision and recall](judges.png)"]
        plot_judges(os.path.join(directory, "judges.png"), judge_reports)
    text = "\n\n".join([*parts, *sections]) + "\n"
    with open(os.path.join(directory, "report.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(directory, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"rows": rows, "judges": list(judge_reports)}, f, indent=2)
    return text


def _pyplot():
    import matplotlib  # only the report needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    _pyplot().close(fig)
