"""PRM trainer (`config.trainer = "prm"`): the process reward model of BCPG-NSA's PRM judge, a scalar head on the
policy's backbone trained with BCE (`losses.step_bce_loss`) at the last token of every step against step labels.

The data is a stored offline set (stage 1 of the offline pipeline, `offline.*`; built here when the directory holds
none) with each response cut into steps and labelled by `prm.labels`: "oracle", the task's ground-truth step checker
(the miniature's source of step truth), or "mc", Monte-Carlo labels (`judges.mc_step_labels`: a step is correct when
one of `prm.mc_samples` completions after it, from the model in `prm.mc_model`, reaches the answer), for tasks
without step truth; where the task has a checker the evaluation still scores against it. Prompts are split by a hash of their tokens
(`prm.heldout_frac`) into training and held-out ones; on the held-out prompts' wrong responses the judge's labels at
`prm.threshold` are scored against the truth (precision, recall, accuracy) before training and every
`eval.every` rounds, and written to `<workdir>/eval_prm.json`. The head is exported as a one-label HF
sequence-classification directory (`models.heads`) that `offline.prm_dir` points the PRM judge at.

Train the PRM on a stored set other than the one it will judge (another `data.seed` draws other prompts), so its
labels there are a judgement, not a memory.
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import numpy as np

from nsa_jax import judges, losses, models, parallel
from nsa_jax.rollouts import Batch, OfflineSet, split_by_prompt
from nsa_jax.train.core import (
    Engine,
    GroupEpochs,
    dtype_of,
    export_policy,
    load_policy,
    param_placement,
    run,
    run_dir,
)
from nsa_jax.train.core.step import Batch as StepBatch
from nsa_jax.train.offline.judging import mc_steps, oracle_steps
from nsa_jax.train.offline.trainer import build_dataset
from nsa_jax.train.rl.trainer import TaskSetting

TOKENS = ("input_ids", "attention_mask", "loss_mask")


def prm_batch(offline: OfflineSet, labels: dict[str, np.ndarray], truth: np.ndarray | None = None) -> Batch:
    """The set as the PRM loss reads it: tokens, `step_end` [N, T] (1 at each step's last token) and `step_target`
    [N, T] (that step's label there), and per row `rewards` and `step_correct` [N, S], the labels the evaluation
    scores the judge against (`truth` when given: the ground truth, where training used Monte-Carlo labels)."""
    step_ids, correct = labels["step_ids"], labels["step_correct"]
    ends = judges.step_ends(step_ids)
    target = np.zeros(step_ids.shape, np.float32)
    rows, cols = np.nonzero(ends)
    target[rows, cols] = correct[rows, np.minimum(step_ids[rows, cols], correct.shape[1] - 1)]
    tokens = {k: offline.batch.tokens[k] for k in TOKENS}
    tokens.update(step_ids=step_ids, step_end=ends.astype(np.float32), step_target=target)
    rows_ = {"step_correct": correct if truth is None else truth, "rewards": offline.batch.rows["rewards"]}
    return Batch(tokens, rows_, offline.group_size)


def _align(truth: np.ndarray, labels: dict[str, np.ndarray]) -> np.ndarray:
    """`truth` [N, S'] padded or cut to the width of `labels["step_correct"]` (both label the task's own steps)."""
    width = labels["step_correct"].shape[1]
    return np.pad(truth, ((0, 0), (0, max(0, width - truth.shape[1]))))[:, :width]


def prm_loss_fn(head: models.ScalarHead, batch: StepBatch, rng: jax.Array):
    del rng
    scores = head(batch["input_ids"], attention_mask=batch["attention_mask"])
    return losses.step_bce_loss(scores, batch["step_target"], batch["step_end"])


def judge_quality(judge: judges.PRMJudge, batch: Batch) -> dict[str, float]:
    """The judge's labels on the wrong responses of `batch` against their true step labels: precision, recall and
    mined tokens and accuracy over their steps (`judges.judge_metrics`)."""
    wrong = np.flatnonzero(batch.rows["rewards"] <= 0.5)
    truth_all, step_ids = batch.rows["step_correct"][wrong], batch.tokens["step_ids"][wrong]
    counts = [judges.step_token_counts(ids, truth_all.shape[1]) for ids in step_ids]
    steps = [sum(1 for n in c if n) for c in counts]  # the response's own steps (the rest is padding)
    tokens = {k: batch.tokens[k][wrong] for k in TOKENS}
    mined_all = judge.label(tokens, step_ids, truth_all.shape[1])
    mined = [list(m[:s]) for m, s in zip(mined_all, steps, strict=True)]
    truth = [list(t[:s]) for t, s in zip(truth_all, steps, strict=True)]
    sizes = [c[:s] for c, s in zip(counts, steps, strict=True)]
    out = judges.judge_metrics(mined, truth, sizes)
    out["wrong_responses"] = float(len(wrong))
    return out


def train(config: ml_collections.ConfigDict) -> models.ScalarHead:
    """BCE training of a PRM head for `prm.epochs` passes over the training prompts' responses; returns the head."""
    p = config.prm
    setting = TaskSetting(config)
    offline = build_dataset(config, setting, lambda: load_policy(config, setting.mesh, setting.path))
    if p.labels not in ("oracle", "mc"):
        raise ValueError(f"prm.labels={p.labels!r} is not 'oracle' or 'mc'")
    oracle = oracle_steps(offline, setting) if hasattr(setting.task, "check_steps") else None
    if p.labels == "mc":
        labels = mc_steps(config, offline, setting, model_dir=p.mc_model or setting.path, samples=p.mc_samples)
        data = prm_batch(offline, labels, None if oracle is None else _align(oracle["step_correct"], labels))
    else:
        if oracle is None:
            raise ValueError(f"task {config.data.task!r} has no step checker: use prm.labels='mc'")
        data = prm_batch(offline, oracle)
    train_set, heldout = split_by_prompt(data, p.heldout_frac)
    if len(heldout) == 0 or len(train_set) == 0:
        raise ValueError(f"prm.heldout_frac={p.heldout_frac} leaves {len(heldout)} held-out / {len(train_set)} rows")
    backbone = p.backbone or setting.path
    models.check_same_vocabulary(backbone, setting.tokenizer, "PRM backbone")
    head = models.from_pretrained_head(
        backbone,
        dtype=dtype_of(config.model.dtype),
        param_dtype=dtype_of(config.model.param_dtype),
        shardings=param_placement(setting.mesh),
    )
    training = Batch({k: train_set.tokens[k] for k in (*TOKENS, "step_end", "step_target")}, {}, data.group_size)
    source = GroupEpochs(training, config.batch_size, config.data.seed)
    steps = p.epochs * source.steps_per_epoch
    engine = Engine.from_config(config, head, setting.mesh, prm_loss_fn, total_steps=steps, group_size=data.group_size)

    def evaluate(position: int) -> dict[str, float]:
        del position
        judge = judges.PRMJudge(engine.policy(), threshold=p.threshold, rows=config.batch_size, mesh=setting.mesh)
        return judge_quality(judge, heldout)

    every = config.eval.every or steps
    history = run(config, engine, source, rounds=steps, desc="prm", evaluate=evaluate, eval_every=every)
    evals = [{k[5:]: v for k, v in h.items() if k.startswith("eval/")} for h in history if "eval/precision" in h]
    report = {
        "threshold": p.threshold,
        "train_rows": len(train_set),
        "heldout_rows": len(heldout),
        "steps": steps,
        "start": evals[0] if evals else {},
        "heldout": evals[-1] if evals else {},
        "train_accuracy": history[-1].get("accuracy") if history else None,
    }
    if parallel.is_main_process():
        os.makedirs(config.workdir, exist_ok=True)
        with open(os.path.join(config.workdir, "eval_prm.json"), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    head = engine.policy()
    if config.export.enabled:
        export_policy(head, run_dir(config, "export"), tokenizer_from=backbone, save=models.save_head)
    return head
