"""LLM-judge fine-tuning (`config.trainer = "llm_judge"`): the miniature's LLM judge, the policy's start model
fine-tuned (SFT) into a judge on verdicts made from ground-truth step labels, then measured on held-out prompts.

Real use needs no training: point `offline.llm_judge_dir` at any local instruct checkpoint with the "full" prompt
style. The miniature has no such model, so this trainer makes one that is imperfect and whose quality is measured:
1. a stored set (`offline.*`, as the PRM's: another `data.seed` than the set the judge will label) whose responses
   are cut into the task's own steps and labelled by its ground-truth step checker;
2. its prompts split by a hash of their tokens (`judge.heldout_frac`); every response of a training prompt becomes a
   (compact judge prompt, verdict) example (`judges.llm.verdict_examples`), written to `<workdir>/judge_sft.jsonl`;
3. SFT on those examples (`judge.steps` steps; the SFT trainer, in `<workdir>/sft`, exported to `<workdir>/export`);
4. the judge's verdicts on the held-out prompts' wrong responses against the truth (precision, recall, step
   accuracy, malformed answers) in `<workdir>/eval_llm_judge.json`.
"""

from __future__ import annotations

import copy
import json
import os

import ml_collections
import numpy as np

from nsa_jax import judges, parallel
from nsa_jax.judges.llm import LLMJudge, verdict_examples
from nsa_jax.rollouts import OfflineSet, split_by_prompt
from nsa_jax.train.core import load_policy, run_dir
from nsa_jax.train.offline.judging import oracle_labels, segment, step_texts
from nsa_jax.train.offline.trainer import build_dataset
from nsa_jax.train.rl.trainer import TaskSetting
from nsa_jax.train.sft import data as data_lib
from nsa_jax.train.sft import trainer as sft


def judge_quality(judge: LLMJudge, offline: OfflineSet, rows: np.ndarray, steps, labels) -> dict[str, float]:
    """The judge's verdicts on `rows` (wrong responses) against the true labels (step ids and the checker's labels)."""
    truth, step_ids = labels["step_correct"], labels["step_ids"]
    g = offline.group_size
    problems = [offline.problems[i // g] for i in rows]
    before = judge.malformed
    mined = judge.label([p.prompt for p in problems], [steps[i] for i in rows], [p.answer for p in problems])
    true = [list(map(bool, truth[i][: len(steps[i])])) for i in rows]
    sizes = [judges.step_token_counts(step_ids[i], len(steps[i])) for i in rows]
    out = judges.judge_metrics(mined, true, sizes)
    out["malformed"] = float(judge.malformed - before)
    out["wrong_responses"] = float(len(rows))
    return out


def train(config: ml_collections.ConfigDict):
    """Builds the verdict data, fine-tunes the judge, measures it; returns the judge model."""
    j = config.judge
    setting = TaskSetting(config)
    offline = build_dataset(config, setting, lambda: load_policy(config, setting.mesh, setting.path))
    step_ids, spans = segment(offline, setting, judges.TaskSegmenter(setting.task))  # the checker's steps
    labels = {"step_ids": step_ids, "step_correct": oracle_labels(offline, setting)}
    truth, steps = labels["step_correct"], step_texts(offline, spans)
    g = offline.group_size
    _, held = split_by_prompt(offline.batch.with_rows(row=np.arange(len(offline.responses))), j.heldout_frac)
    held_rows = set(held.rows["row"].tolist())
    train_rows = [i for i in range(len(steps)) if i not in held_rows and steps[i]]
    if not train_rows or not held_rows:
        raise ValueError(f"judge.heldout_frac={j.heldout_frac} leaves {len(held_rows)} held-out rows")
    problems = [offline.problems[i // g] for i in train_rows]
    examples = verdict_examples(
        [p.prompt for p in problems],
        [steps[i] for i in train_rows],
        [p.answer for p in problems],
        [list(map(bool, truth[i][: len(steps[i])])) for i in train_rows],
    )
    data_path = os.path.join(config.workdir, "judge_sft.jsonl")

    def write() -> None:
        os.makedirs(config.workdir, exist_ok=True)
        with open(data_path + ".tmp", "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in examples)
        os.replace(data_path + ".tmp", data_path)

    parallel.main_process_first("judge_data", write)
    c = sft_config(config, data_path)
    model = sft.train(c)

    wrong = np.asarray(sorted(i for i in held_rows if offline.batch.rows["rewards"][i] <= 0.5 and steps[i]), np.int64)
    judge = LLMJudge(
        model,
        setting.tokenizer,
        style="compact",
        prompt_fn=data_lib.format_prompt,
        max_prompt_len=j.max_prompt_len,
        max_new_tokens=j.max_new_tokens,
        batch_size=j.batch_size,
        mesh=setting.mesh,
    )
    report = {"examples": len(examples), "heldout": judge_quality(judge, offline, wrong, steps, labels)}
    if parallel.is_main_process():
        with open(os.path.join(config.workdir, "eval_llm_judge.json"), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return model


def sft_config(config: ml_collections.ConfigDict, data_path: str) -> ml_collections.ConfigDict:
    """The SFT run of the judge: this config's model, optimiser and batch, on the verdict examples."""
    c = copy.deepcopy(config)
    with c.unlocked():
        c.trainer = "sft"
        c.data.path = data_path
        c.data.seq_len = config.judge.seq_len
        c.max_steps = config.judge.steps
        c.checkpoint.dir = os.path.join(config.workdir, "sft", "checkpoint")
        c.metrics.dir = os.path.join(config.workdir, "sft", "metrics")
        c.export.enabled = True
        c.export.dir = run_dir(config, "export")
        c.eval.enabled = False
    return c
