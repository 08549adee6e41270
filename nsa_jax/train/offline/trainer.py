"""Offline trainer (`config.trainer = "offline"`): BCPG, BCPG-NSA, GRPO-offline, TOPR and RFT on one stored set.

The pipeline's stages, each persisted under the workdir and skipped when its output is already there, so an
interrupted run resumes at the stage where it stopped:
1. the data set (`rollouts.offline`): `offline.num_prompts` training problems x `offline.samples_per_prompt`
   responses from the behaviour policy (the model at `model.path`), mixed groups only, in `<workdir>/dataset`
   (or `offline.dataset_dir`, to share one set between methods);
2. step labels for BCPG-NSA (`offline.step_labels`, `train/offline/judging.py`), in `<workdir>/steps_<mode>.npz`:
   "none"; "oracle", the built-in task's steps (`judges.TaskSegmenter`) labelled by its ground-truth step checker;
   or a judge mode on the same steps: "prm" (`judges.PRMJudge`, the head in `offline.prm_dir` above
   `offline.prm_threshold`), "llm" (`judges.llm.LLMJudge`, the model in `offline.llm_judge_dir`), "consensus"
   (both call the step correct, the paper's choice) or "or". With a judge, `<workdir>/judge_report.json` scores
   every mode those judges allow against the ground truth on the set's wrong responses (DESIGN.md's contract);
3. training on the core loop: `offline.epochs` passes over the set's groups in seeded orders, one optimiser step
   per mini-batch of `batch_size` rows (whole groups), the loss `offline.loss` with `logp_old` the stored
   behaviour log-probs (so "grpo" is GRPO-offline: ratio and clip against the behaviour policy); with
   `rl.share_prompt` each group's prompt is computed once per forward, as in the online update
   (`core.shared_prompt_width`);
4. iterations (`offline.iterations`, 1 by default): each further one samples a new set with the policy just trained,
   which becomes its behaviour policy, in `<workdir>/iter_<n>` (`train`).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable

import jax
import ml_collections
import numpy as np
from flax import nnx

from nsa_jax import parallel, rollouts
from nsa_jax.rollouts import Batch, OfflineSet
from nsa_jax.train.core import (
    Engine,
    GroupEpochs,
    export_policy,
    load_policy,
    run,
    run_dir,
    shared_prompt_width,
)
from nsa_jax.train.offline import judging
from nsa_jax.train.rl import heldout
from nsa_jax.train.rl.loss import make_policy_loss_fn
from nsa_jax.train.rl.trainer import TaskSetting, summarize

STEP_LABELS = ("none", "oracle", "prm", "llm", "consensus", "or")


def build_dataset(
    config: ml_collections.ConfigDict, setting: TaskSetting, model: nnx.Module | Callable[[], nnx.Module]
) -> OfflineSet:
    """Stage 1: the stored set, sampled by the behaviour policy `model` (or the policy a callable loads, called only
    when the set must be sampled); every process samples, process 0 writes, all then read the file, so every
    process trains on the same set."""
    o = config.offline
    directory = o.dataset_dir or os.path.join(config.workdir, "dataset")
    if not os.path.isfile(os.path.join(directory, "meta.json")):
        model = model() if callable(model) and not isinstance(model, nnx.Module) else model
        problems = heldout.problems_by_level(
            setting.task, "train", o.difficulties, o.num_prompts // len(o.difficulties), config.data.seed
        )
        offline = rollouts.collect_offline(
            model,
            setting.tokenizer,
            problems,
            group_size=o.samples_per_prompt,
            prompts_per_call=o.prompts_per_call,
            key=jax.random.PRNGKey(o.seed),
            prompt_fn=setting.prompt_fn,
            reward_fn=setting.reward_fn,
            max_prompt_len=config.rl.max_prompt_len,
            max_new_tokens=config.rl.max_new_tokens,
            temperature=o.temperature,
            mesh=setting.mesh,
        )
        parallel.main_process_first("offline_dataset", lambda: offline.save(directory))
    return OfflineSet.load(directory)


def step_labels(config: ml_collections.ConfigDict, offline: OfflineSet, setting: TaskSetting) -> dict[str, np.ndarray]:
    """Stage 2: the step labels of `offline.step_labels`, computed once into `<workdir>/steps_<mode>.npz` (with a
    judge, also `<workdir>/judge_report.json`)."""
    mode = config.offline.step_labels
    if mode not in STEP_LABELS:
        raise ValueError(f"offline.step_labels={mode!r} is not one of {STEP_LABELS}")
    if mode == "none":
        return {}
    path = os.path.join(config.workdir, f"steps_{mode}.npz")
    if not os.path.isfile(path):
        labels = (
            judging.oracle_steps(offline, setting)
            if mode == "oracle"
            else judging.judged_steps(config, offline, setting)
        )

        def write() -> None:
            os.makedirs(config.workdir, exist_ok=True)
            np.savez(path + ".tmp.npz", **labels)
            os.replace(path + ".tmp.npz", path)

        parallel.main_process_first("offline_steps", write)
    with np.load(path) as f:
        return {k: f[k] for k in ("step_ids", "step_correct")}


def training_batch(offline: OfflineSet, labels: dict[str, np.ndarray]) -> Batch:
    """The stored set as the loss reads it: `logp_old` = the behaviour log-probs, plus the step labels."""
    tokens = {k: v for k, v in offline.batch.tokens.items() if k != "logp_b"}
    tokens["logp_old"] = offline.batch.tokens["logp_b"]
    rows = dict(offline.batch.rows)
    if labels:
        tokens["step_ids"], rows["step_correct"] = labels["step_ids"], labels["step_correct"]
    return Batch(tokens, rows, offline.group_size)


def train(config: ml_collections.ConfigDict) -> nnx.Module:
    """The pipeline for `offline.iterations` iterations (stage 5): iteration 0 in the workdir, iteration `n > 0` in
    `<workdir>/iter_<n>` with a data set sampled afresh (seed `offline.seed + n`) by iteration `n - 1`'s exported
    policy, which is also its behaviour policy and its start. Finished iterations (and stages) are skipped, so an
    interrupted run resumes where it stopped. `<workdir>/iterations.json` lists each iteration's summary."""
    summaries, model = [], None
    for n in range(config.offline.iterations):
        c = iteration_config(config, n)
        model = train_iteration(c)
        with open(os.path.join(c.workdir, "eval_offline.json"), encoding="utf-8") as f:
            summaries.append(json.load(f))
    if config.offline.iterations > 1 and parallel.is_main_process():
        with open(os.path.join(config.workdir, "iterations.json"), "w", encoding="utf-8") as f:
            json.dump(summaries, f, indent=2)
    return model


def iteration_config(config: ml_collections.ConfigDict, n: int) -> ml_collections.ConfigDict:
    """Iteration `n`'s config: the given one for 0 (exporting when a later iteration needs its policy); for `n > 0`
    its own workdir, data set and sampling seed, starting from iteration `n - 1`'s export."""
    c = copy.deepcopy(config)
    with c.unlocked():
        if n < config.offline.iterations - 1:
            c.export.enabled, c.export.dir = True, ""
        if n > 0:
            previous = config.workdir if n == 1 else os.path.join(config.workdir, f"iter_{n - 1}")
            c.workdir = os.path.join(config.workdir, f"iter_{n}")
            c.model.path = os.path.join(previous, "export")
            c.offline.dataset_dir = ""
            c.offline.seed = config.offline.seed + n
            c.checkpoint.dir = c.metrics.dir = ""
            if n == config.offline.iterations - 1:
                c.export.dir = config.export.dir  # the last iteration's policy goes where the user asked
    return c


def train_iteration(config: ml_collections.ConfigDict) -> nnx.Module:
    """One iteration: data set, step labels, training (stages skipped when done); returns the trained policy. Writes
    `<workdir>/eval_offline.json` (held-out evaluation before and after, and the data set's counts) and, with
    `export.enabled`, the policy."""
    o = config.offline
    setting = TaskSetting(config)
    model = load_policy(config, setting.mesh, setting.path)
    offline = build_dataset(config, setting, model)
    labels = step_labels(config, offline, setting)
    batch = training_batch(offline, labels)
    width = shared_prompt_width(config, setting.mesh, batch)
    source = GroupEpochs(batch, config.batch_size, config.data.seed, prompt_width=width)
    loss_fn = make_policy_loss_fn(
        o.loss,
        o.loss_kwargs.to_dict(),
        group_size=offline.group_size,
        chunk_size=config.logprob_chunk_size,
        max_len=config.rl.max_new_tokens,
        batch_kwargs={"step_ids": "step_ids", "step_correct": "step_correct"} if labels else None,
    )
    rounds = o.epochs * source.steps_per_epoch
    engine = Engine.from_config(config, model, setting.mesh, loss_fn, total_steps=rounds, group_size=offline.group_size)
    evaluate = (lambda position: setting.evaluate(engine.policy(), position)) if config.eval.enabled else None
    history = run(
        config,
        engine,
        source,
        rounds=rounds,
        desc=o.loss,
        log_every=config.log_every,
        evaluate=evaluate,
        eval_every=config.eval.every or rounds,
    )
    summary = {**summarize(history), **setting.gains(history), "dataset": offline.stats}
    if parallel.is_main_process():
        os.makedirs(config.workdir, exist_ok=True)
        with open(os.path.join(config.workdir, "eval_offline.json"), "w", encoding="utf-8") as f:
            head = {"loss": o.loss, "step_labels": o.step_labels, "steps": rounds, "behaviour_policy": setting.path}
            json.dump({**head, **summary}, f, indent=2)
    model = engine.policy()
    if config.export.enabled:
        export_policy(model, run_dir(config, "export"), tokenizer_from=setting.path)
    return model
