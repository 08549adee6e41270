"""The main job (`config.trainer = "demo"`, `configs/demo.py`): the miniature of all three papers, every method from
one start, and a report with plots.

`config.scale` ("quick" or "full") picks the pipeline `config.<scale>`; it runs in `<workdir>/<scale>`:
1. SFT of the built-in tiny model (`sft`), whose export is every method's start; the start's held-out evaluation
   once (`start/`), which every method's run reads instead of repeating (`eval.start_from`);
2. for each seed, in `seed_<s>/`:
   - online RL, each method of `online` (GRPO, LENS, NSR, RFT);
   - BCPG-NSA's judges on a stored set of their own (`judges.prm`, `judges.llm_judge`; trained once, in
     `seed_0/`, and used by every seed), then each method of `offline` on the seed's one stored set
     (`offline_set/`): BCPG, BCPG-NSA with the judges' consensus labels (and `judge_report.json`), GRPO-offline,
     TOPR (and RFT at full scale);
   - PNS: the reward model (on the judges' set) and the negative generator (reverse RL on the composite reward),
     both trained once in `seed_0/` like the judges; the seed's pairs of each source of negatives with their
     plausibility report, and DPO from the start on each pair file of `preference.dpo` (PNS negatives,
     rejection-sampled negatives; at full scale also random ones, another prompt's wrong answer);
3. `report.md` (with `results.json` and PNG plots, `nsa_jax.eval.report`), printed at the end.

Every run is an ordinary config of its trainer, so any knob can be set from the command line
(`--config.quick.online.grpo.rl.num_rollouts=4`). What this trainer decides: the directories that wire the runs
together, the seed offsets (seed `s` adds `s` to `seed` and `100 * s` to `data.seed`, `offline.seed` and
`pns.seed`; the SFT start, the helpers and the held-out problems are shared), and the held-out evaluation, which is
`<scale>.eval` for every method so that all are measured on the same problems with the same sampling keys.

A finished run leaves `stage.json` (its config) in its directory and is skipped on a rerun, which therefore
rewrites the same report; a rerun with a changed config for a finished run is refused. An interrupted run resumes
from its own checkpoints.
"""

from __future__ import annotations

import copy
import glob
import json
import os
import time
from collections.abc import Callable
from typing import Any

import ml_collections

from nsa_jax import parallel
from nsa_jax.eval import report
from nsa_jax.train import offline, rl, sft
from nsa_jax.train.core import load_policy, run_dir
from nsa_jax.train.pns import generator as pns_generator
from nsa_jax.train.pns import pairs as pns_pairs
from nsa_jax.train.preference import dpo, prm, reward_model
from nsa_jax.train.rl.trainer import TaskSetting
from nsa_jax.train.sft import judge as llm_judge

SEEDED = ("data.seed", "offline.seed", "pns.seed")  # offset by 100 * seed (`seed` itself by seed)
JUDGE_MODES = ("prm", "llm", "consensus", "or")


def wired(config: ml_collections.ConfigDict, workdir: str, seed: int = 0, **fields: Any) -> ml_collections.ConfigDict:
    """A copy of `config` in `workdir`, offset to `seed`, with dotted `fields` (`"model.path": ...`) set."""
    c = copy.deepcopy(config)
    with c.unlocked():
        c.workdir = workdir
        c.seed += seed
        for name in SEEDED:
            block, key = name.split(".")
            if block in c:
                c[block][key] += 100 * seed
        for name, value in fields.items():
            block, key = name.split(".")
            c[block][key] = value
    return c


def with_eval(config: ml_collections.ConfigDict, e: ml_collections.ConfigDict, start: str) -> ml_collections.ConfigDict:
    """`config` evaluated like every other method: `e`'s settings (the run keeps its own `eval.every`), the start's
    results read from `start`."""
    with config.unlocked():
        for key, value in e.items():
            if key != "every":
                config.eval[key] = value
        config.eval.start_from = start
    return config


def run_stage(name: str, fn: Callable[[ml_collections.ConfigDict], Any], config: ml_collections.ConfigDict) -> None:
    """Runs `fn(config)` unless its directory holds a `stage.json` of the same config (a finished run); writes that
    marker when it finishes. A marker of another config is an error: the finished run would not be this one."""
    marker = os.path.join(config.workdir, "stage.json")
    wanted = json.loads(json.dumps(config.to_dict()))
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            if json.load(f) != wanted:
                raise ValueError(f"{config.workdir} holds a finished run of another config; use a new workdir")
        return
    clock = time.perf_counter()
    fn(config)
    if parallel.is_main_process():
        with open(marker + ".tmp", "w", encoding="utf-8") as f:
            json.dump(wanted, f, indent=2)
        os.replace(marker + ".tmp", marker)
        print(f"[main job] {name} finished in {time.perf_counter() - clock:.0f} s", flush=True)


def evaluations(workdir: str, responses_at: Callable[[int], int]) -> tuple[report.Evaluation, ...]:
    """A run's held-out evaluations (`heldout/round_N.npz`) in order, each with the responses sampled by then."""
    paths = sorted(glob.glob(os.path.join(workdir, "heldout", "round_*.npz")))
    positions = [int(os.path.basename(p)[len("round_") : -len(".npz")]) for p in paths]
    return tuple(report.Evaluation(responses_at(n), p) for n, p in zip(positions, paths, strict=True))


def evaluate_start(config: ml_collections.ConfigDict) -> str:
    """The start policy's held-out results, evaluated once into `<workdir>/heldout/round_000000.npz`."""
    setting = TaskSetting(config)
    path = setting.heldout_path(0)
    if not os.path.isfile(path):
        clock = time.perf_counter()
        setting.evaluate(load_policy(config, setting.mesh, setting.path), 0)
        if parallel.is_main_process():
            print(f"[main job] start evaluation finished in {time.perf_counter() - clock:.0f} s", flush=True)
    return path


def train(config: ml_collections.ConfigDict) -> str:
    """Runs the pipeline `config.<config.scale>`; returns the report's markdown (also in `<workdir>/<scale>/`)."""
    if config.scale not in ("quick", "full"):
        raise ValueError(f"config.scale={config.scale!r} is not 'quick' or 'full'")
    p, root = config[config.scale], os.path.join(config.workdir, config.scale)
    clock = time.perf_counter()
    sft_config = wired(p.sft, os.path.join(root, "sft"), **{"export.enabled": True})
    run_stage("sft", sft.train, sft_config)
    start = run_dir(sft_config, "export")
    first = next(iter(p.online.values()))
    start_eval = evaluate_start(
        with_eval(wired(first, os.path.join(root, "start"), **{"model.path": start}), p.eval, "")
    )
    runs, judge_reports, plausibility = [], [], []
    for s in range(p.seeds):
        here = os.path.join(root, f"seed_{s}")

        def at(c: ml_collections.ConfigDict, name: str, seed: int = s, directory: str = here, **fields: Any):
            return wired(c, os.path.join(directory, name), seed, **{"model.path": start, **fields})

        for name, method in p.online.items():
            c = with_eval(at(method, name), p.eval, start_eval)
            run_stage(f"seed {s} {name}", rl.train, c)
            per_rollout = c.rl.prompts_per_rollout * c.rl.group_size
            runs.append(report.MethodRun(name, "online", s, evaluations(c.workdir, lambda n, k=per_rollout: n * k)))

        # The helpers (the judges, the reward model, the negative generator) are trained once, with seed 0, in
        # seed_0/, and every seed uses them, as it uses the one SFT start: the seeds measure the methods' variance.
        helpers = os.path.join(root, "seed_0")
        judge_set = os.path.join(helpers, "prm", "dataset")
        if s == 0:
            run_stage("prm", prm.train, at(p.judges.prm, "prm"))
            run_stage(
                "llm judge",
                llm_judge.train,
                at(p.judges.llm_judge, "llm_judge", **{"offline.dataset_dir": judge_set}),
            )
        judged = {
            "offline.dataset_dir": os.path.join(here, "offline_set"),
            "offline.prm_dir": os.path.join(helpers, "prm", "export"),
            "offline.llm_judge_dir": os.path.join(helpers, "llm_judge", "export"),
        }
        for name, method in p.offline.items():
            c = with_eval(at(method, name, **judged), p.eval, start_eval)
            run_stage(f"seed {s} {name}", offline.train, c)
            size = c.offline.num_prompts * c.offline.samples_per_prompt
            runs.append(report.MethodRun(name, "offline", s, evaluations(c.workdir, lambda n, k=size: k if n else 0)))
            if c.offline.step_labels in JUDGE_MODES:
                judge_reports.append(_read(os.path.join(c.workdir, "judge_report.json")))

        rm = at(p.preference.rm, "reward_model", 0, helpers, **{"rm.dataset_dir": judge_set})
        heads = {"pns.rm_dir": run_dir(rm, "export"), "pns.prm_dir": os.path.join(helpers, "prm", "export")}
        gen = at(p.preference.generator, "pns_generator", 0, helpers, **heads)
        if s == 0:
            run_stage("reward model", reward_model.train, rm)
            run_stage("pns generator", pns_generator.train, gen)
        pairs = at(p.preference.pairs, "pns_pairs", **heads, **{"pns.generator_dir": run_dir(gen, "export")})
        run_stage(f"seed {s} pns pairs", pns_pairs.train, pairs)
        plausibility.append(_read(os.path.join(pairs.workdir, "plausibility.json")))
        sampled = pairs.pns.num_prompts * pairs.pns.samples
        for source, method in p.preference.dpo.items():
            jsonl = os.path.join(pairs.workdir, f"pairs_{source}.jsonl")
            c = with_eval(at(method, f"dpo_{source}", **{"dpo.pairs": jsonl}), p.eval, start_eval)
            run_stage(f"seed {s} dpo {source}", dpo.train, c)
            runs.append(
                report.MethodRun(
                    f"dpo_{source}", "preference", s, evaluations(c.workdir, lambda n, k=sampled: k if n else 0)
                )
            )

    text = ""
    if parallel.is_main_process():
        notes = [
            "## PNS: plausibility of each source of negatives",
            report.plausibility_table(plausibility),
            (
                f"SFT {p.sft.max_steps} steps; {p.seeds} seed(s). Online methods: {first.rl.num_rollouts} rollouts of "
                f"{first.rl.prompts_per_rollout} x {first.rl.group_size}; the offline methods train on one stored set "
                "of the start's responses; DPO's pairs come from the start's samples (the PNS negatives also from the "
                "generator's training and samples)."
            ),
        ]
        pairs = [tuple(pair.split("-")) for pair in p.comparisons]
        text = report.write(root, runs, p.eval.ks, comparisons=pairs, judge_reports=judge_reports, sections=notes)
        print(
            text + f"\nReport: {os.path.join(root, 'report.md')}. This invocation took "
            f"{(time.perf_counter() - clock) / 60:.1f} min.",
            flush=True,
        )
    return text


def _read(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
