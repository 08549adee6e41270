"""Stage 2 of the offline pipeline, the step labels: the ground truth (`oracle_steps`), and with judges (BCPG-NSA
stage 3) the task's steps of every stored response labelled
by the PRM judge, the LLM judge, or their consensus / or, and every mode those judges allow scored against the
ground truth in `<workdir>/judge_report.json` (DESIGN.md's contract, plus the LLM judge's malformed answers).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import ml_collections
import numpy as np

from nsa_jax import models, parallel
from nsa_jax.judges import PRMJudge, TaskSegmenter, combine, judge_report, response_step_ids, step_token_counts
from nsa_jax.judges.llm import LLMJudge
from nsa_jax.rollouts import OfflineSet
from nsa_jax.train.core import load_policy, param_placement
from nsa_jax.train.rl.trainer import TaskSetting
from nsa_jax.train.sft.data import format_prompt

# The judges each judge mode needs.
JUDGES = {"prm": ("prm",), "llm": ("llm",), "consensus": ("prm", "llm"), "or": ("prm", "llm")}


def oracle_steps(offline: OfflineSet, setting: TaskSetting) -> dict[str, np.ndarray]:
    """Per-token `step_ids` [N, T] (aligned with `input_ids`, -1 off the response) and per-row `step_correct`
    [N, S] of the task's own steps, labelled by its ground-truth step checker."""
    tokens, g = offline.batch.tokens, offline.group_size
    segmenter = TaskSegmenter(setting.task)
    step_ids = np.full(tokens["input_ids"].shape, -1, np.int32)
    labels = []
    for i, (text, mask) in enumerate(zip(offline.responses, tokens["loss_mask"], strict=True)):
        problem = offline.problems[i // g]
        cols = np.flatnonzero(mask > 0)
        step_ids[i, cols], _ = response_step_ids(segmenter, setting.tokenizer, tokens["input_ids"][i, cols], problem)
        labels.append(setting.task.check_steps(text, problem).correct)
    width = max([len(x) for x in labels] + [1])
    step_correct = np.zeros((len(labels), width), bool)
    for i, x in enumerate(labels):
        step_correct[i, : len(x)] = x
    return {"step_ids": step_ids, "step_correct": step_correct}


def prm_labels(
    config: ml_collections.ConfigDict, offline: OfflineSet, setting: TaskSetting, step_ids: np.ndarray, width: int
) -> np.ndarray:
    """[N, width] PRM judge labels of the steps in `step_ids`."""
    o = config.offline
    if not o.prm_dir:
        raise ValueError("offline.step_labels='prm' needs offline.prm_dir (a head exported by the 'prm' trainer)")
    head = models.from_pretrained_head(o.prm_dir, shardings=param_placement(setting.mesh))
    judge = PRMJudge(head, threshold=o.prm_threshold, rows=config.batch_size, mesh=setting.mesh)
    return judge.label(offline.batch.tokens, step_ids, width)


def write_judge_report(
    path: str, offline: OfflineSet, step_ids: np.ndarray, modes: dict[str, np.ndarray], extra: dict | None = None
) -> None:
    """`judges.judge_report` of each mode's [N, S] labels against `modes["oracle"]` (the ground truth, itself
    a row of the report) on the set's wrong responses, each cut to its own steps; `extra` (counts such as the LLM
    judge's malformed answers) is added under `"counts"`."""
    width = max(x.shape[1] for x in modes.values())
    wrong = np.flatnonzero(offline.batch.rows["rewards"] <= 0.5)
    steps = [int(step_ids[i].max()) + 1 for i in wrong]

    def per_response(labels: np.ndarray) -> list[list[bool]]:
        labels = np.pad(labels, ((0, 0), (0, width - labels.shape[1])))
        return [list(map(bool, labels[i, :k])) for i, k in zip(wrong, steps, strict=True)]

    sizes = [step_token_counts(step_ids[i], k) for i, k in zip(wrong, steps, strict=True)]
    report = judge_report({m: per_response(x) for m, x in modes.items()}, per_response(modes["oracle"]), sizes)
    report["counts"] = {"wrong_responses": float(len(wrong)), **(extra or {})}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)


def response_steps(offline: OfflineSet, setting: TaskSetting) -> list[list[str]]:
    """Each response's step texts: the task's own steps (`judges.TaskSegmenter`), the units its labels refer to."""
    segmenter = TaskSegmenter(setting.task)
    g = offline.group_size
    return [
        [text[a:b] for a, b in segmenter.spans(text, offline.problems[i // g])]
        for i, text in enumerate(offline.responses)
    ]


def judge_prompt_format(name: str, tokenizer) -> Callable[[str], str]:
    """How a judge prompt reaches the LLM judge: "plain" (prompt + newline, as the SFT data) or "chat" (one user
    turn in the judge's chat template, with the generation prompt)."""
    if name == "plain":
        return format_prompt
    if name == "chat":
        return lambda text: tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
    raise ValueError(f"offline.llm_judge_format={name!r} is not 'plain' or 'chat'")


def llm_labels(config: ml_collections.ConfigDict, offline: OfflineSet, setting: TaskSetting, width: int):
    """[N, width] LLM judge verdicts on the wrong responses' steps (correct responses: all False, never mined);
    returns them with the number of malformed answers."""
    o = config.offline
    if not o.llm_judge_dir:
        raise ValueError(f"offline.step_labels={o.step_labels!r} needs offline.llm_judge_dir (an HF directory)")
    tokenizer = models.load_tokenizer(o.llm_judge_dir)
    judge = LLMJudge(
        load_policy(config, setting.mesh, o.llm_judge_dir),
        tokenizer,
        style=o.llm_judge_style,
        prompt_fn=judge_prompt_format(o.llm_judge_format, tokenizer),
        max_prompt_len=o.llm_judge_max_prompt_len,
        max_new_tokens=o.llm_judge_max_new_tokens,
        batch_size=o.llm_judge_batch_size,
        mesh=setting.mesh,
    )
    steps, g = response_steps(offline, setting), offline.group_size
    wrong = [i for i in np.flatnonzero(offline.batch.rows["rewards"] <= 0.5) if steps[i]]
    problems = [offline.problems[i // g] for i in wrong]
    verdicts = judge.label([p.prompt for p in problems], [steps[i] for i in wrong], [p.answer for p in problems])
    out = np.zeros((len(offline.responses), width), bool)
    for i, v in zip(wrong, verdicts, strict=True):
        out[i, : len(v)] = v
    return out, judge.malformed


def judged_steps(config: ml_collections.ConfigDict, offline: OfflineSet, setting: TaskSetting):
    """The judges' labels of the task's steps for judge mode `offline.step_labels`, with every mode those judges
    allow scored against the ground truth in `<workdir>/judge_report.json`."""
    mode = config.offline.step_labels
    oracle = oracle_steps(offline, setting)
    width = oracle["step_correct"].shape[1]
    modes = {"oracle": oracle["step_correct"]}
    extra = {}
    if "prm" in JUDGES[mode]:
        modes["prm"] = prm_labels(config, offline, setting, oracle["step_ids"], width)
    if "llm" in JUDGES[mode]:
        modes["llm"], extra["llm_malformed"] = llm_labels(config, offline, setting, width)
    if len(JUDGES[mode]) == 2:
        for both in ("consensus", "or"):
            modes[both] = np.asarray(combine(both, llm=modes["llm"].tolist(), prm=modes["prm"].tolist()), bool)
    path = os.path.join(config.workdir, "judge_report.json")
    ids = oracle["step_ids"]
    parallel.main_process_first("judge_report", lambda: write_judge_report(path, offline, ids, modes, extra))
    return {"step_ids": ids, "step_correct": modes[mode]}
