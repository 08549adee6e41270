"""The miniature comparison (`config.trainer = "rl_demo"`, `configs/demo.py`): SFT the built-in tiny model, then
run each RL method from that same start with the same rollout budget, and print and save a small table.

The sub-runs are ordinary configs (`config.sft`, `config.methods.<name>`) so any knob can be changed from the
command line; this trainer only wires their directories together: the SFT export in `<workdir>/sft/export` is
every method's `model.path`, and each method runs in `<workdir>/<name>`.
"""

from __future__ import annotations

import json
import os
import time

import ml_collections

from nsa_jax import parallel
from nsa_jax.train import rl, sft
from nsa_jax.train.core import run_dir


def _wired(config: ml_collections.ConfigDict, workdir: str, **model) -> ml_collections.ConfigDict:
    """A copy of `config` with its workdir (and model fields) set by the demo."""
    c = ml_collections.ConfigDict(config.to_dict())
    c.workdir = workdir
    for k, v in model.items():
        c.model[k] = v
    return c


def table(rows: dict[str, dict[str, float]], k: int, levels: tuple[int, ...]) -> str:
    """Markdown table: held-out pass@1 / pass@k overall and on each evaluated level (the last is the hardest), and
    the share of all-wrong groups seen during training (the rollouts GRPO cannot learn from)."""
    keys = [f"pass@{kk}{suffix}" for suffix in ["", *(f"/d{level}" for level in levels)] for kk in (1, k)]
    lines = [
        "| method | " + " | ".join(key.replace("/", " ") for key in keys) + " | all-wrong groups |",
        "|" + " --- |" * (len(keys) + 2),
    ]
    for name, r in rows.items():
        wrong = r.get("mean_all_wrong_frac")
        cells = [f"{r[key]:.3f}" for key in keys] + ["-" if wrong is None else f"{wrong:.3f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def train(config: ml_collections.ConfigDict) -> dict[str, dict[str, float]]:
    """Runs SFT then every method in `config.methods`; returns the table's rows (also in `<workdir>/results.json`
    and `<workdir>/results.md`). Rerunning it in the same workdir resumes each finished run and rewrites the same
    files; an interrupted run continues where its last checkpoint left it."""
    start = time.perf_counter()
    sft_config = _wired(config.sft, os.path.join(config.workdir, "sft"))
    sft_config.export.enabled = True
    sft.train(sft_config)
    start_path = run_dir(sft_config, "export")
    rows: dict[str, dict[str, float]] = {}
    for name, method in config.methods.items():
        _, summary = rl.train_and_report(_wired(method, os.path.join(config.workdir, name), path=start_path))
        if not rows:  # every method starts from the same SFT policy and is evaluated with the same seed
            rows["sft start"] = {k.removeprefix("start/"): v for k, v in summary.items() if k.startswith("start/")}
        rows[name] = summary
    k = max(config.methods[name].eval.ks[-1] for name in config.methods)
    levels = sorted({level for name in config.methods for level in config.methods[name].eval.difficulties})
    text = table(rows, k, tuple(levels))
    text += f"\n\nSFT {config.sft.max_steps} steps, then {len(config.methods)} methods from its export.\n"
    if parallel.is_main_process():
        # The files hold only what the runs determine, so a rerun (which resumes every finished sub-run) writes
        # the same files; the wall time of this invocation goes to the console only.
        print(text + f"This invocation took {(time.perf_counter() - start) / 60:.1f} min.", flush=True)
        with open(os.path.join(config.workdir, "results.md"), "w", encoding="utf-8") as f:
            f.write(text)
        with open(os.path.join(config.workdir, "results.json"), "w", encoding="utf-8") as f:
            json.dump({"rows": rows}, f, indent=2)
    return rows
