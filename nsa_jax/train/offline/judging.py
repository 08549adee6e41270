"""Stage 2 of the offline pipeline, the step labels: the ground truth (`oracle_steps`), and with judges (BCPG-NSA
stage 3) the task's steps of every stored response labelled
by the PRM judge, the LLM judge, or their consensus / or, and every mode those judges allow scored against the
ground truth in `<workdir>/judge_report.json` (DESIGN.md's contract, plus the LLM judge's malformed answers).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

import jax
import ml_collections
import numpy as np

from nsa_jax import models, parallel
from nsa_jax.judges import (
    PRMJudge,
    RuleSegmenter,
    TaskSegmenter,
    combine,
    judge_report,
    mc_step_labels,
    response_step_ids,
    sampler_completions,
    step_token_counts,
)
from nsa_jax.judges.llm import LLMJudge
from nsa_jax.rollouts import OfflineSet
from nsa_jax.train.core import load_policy, param_placement
from nsa_jax.train.rl.trainer import TaskSetting
from nsa_jax.train.sft.data import format_prompt

# The judges each judge mode needs.
JUDGES = {"prm": ("prm",), "llm": ("llm",), "consensus": ("prm", "llm"), "or": ("prm", "llm")}


def segment(offline: OfflineSet, setting: TaskSetting, segmenter) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
    """Per-token `step_ids` [N, T] of every stored response (aligned with `input_ids`, -1 off the response) and each
    response's step spans in its decoded text, by `segmenter`."""
    tokens, g = offline.batch.tokens, offline.group_size
    step_ids = np.full(tokens["input_ids"].shape, -1, np.int32)
    spans = []
    for i, mask in enumerate(tokens["loss_mask"]):
        cols = np.flatnonzero(mask > 0)
        ids, found = response_step_ids(
            segmenter, setting.tokenizer, tokens["input_ids"][i, cols], offline.problems[i // g]
        )
        step_ids[i, cols] = ids
        spans.append(found)
    return step_ids, spans


def as_matrix(labels: Sequence[Sequence[bool]]) -> np.ndarray:
    """Per-response label lists -> [N, S] bool, S the longest (False beyond a response's own steps)."""
    out = np.zeros((len(labels), max([len(x) for x in labels] + [1])), bool)
    for i, x in enumerate(labels):
        out[i, : len(x)] = x
    return out


def oracle_steps(offline: OfflineSet, setting: TaskSetting) -> dict[str, np.ndarray]:
    """`step_ids` and per-row `step_correct` [N, S] of the task's own steps (`judges.TaskSegmenter`), labelled by
    its ground-truth step checker."""
    step_ids, _ = segment(offline, setting, TaskSegmenter(setting.task))
    return {"step_ids": step_ids, "step_correct": oracle_labels(offline, setting)}


def oracle_labels(offline: OfflineSet, setting: TaskSetting) -> np.ndarray:
    """[N, S] the task's step checker's labels of every stored response's own steps."""
    g = offline.group_size
    labels = [setting.task.check_steps(t, offline.problems[i // g]).correct for i, t in enumerate(offline.responses)]
    return as_matrix(labels)


def mc_steps(
    config: ml_collections.ConfigDict, offline: OfflineSet, setting: TaskSetting, *, model_dir: str, samples: int
) -> dict[str, np.ndarray]:
    """`step_ids` and Monte-Carlo `step_correct` (`judges.mc_step_labels`, `samples` completions per step prefix
    from the model in `model_dir`) of the task's own steps where it has them (`check_steps`), else of the rule
    segmenter's (`judges.RuleSegmenter`)."""
    step_ids, spans = segment(offline, setting, step_segmenter(setting))
    g, rl = offline.group_size, config.rl
    complete = sampler_completions(
        load_policy(config, setting.mesh, model_dir),
        setting.tokenizer,
        max_prompt_len=offline.batch.tokens["input_ids"].shape[1],  # a prefix is never longer than a stored row
        max_new_tokens=rl.max_new_tokens,
        prompts_per_call=config.offline.prompts_per_call,
        key=jax.random.PRNGKey(config.offline.seed + 1),
        mesh=setting.mesh,
    )
    problems = [offline.problems[i // g] for i in range(len(offline.responses))]
    labels = mc_step_labels(
        problems,
        offline.responses,
        spans,
        complete=complete,
        verify=setting.verifier,
        samples=samples,
        prompt_fn=setting.prompt_fn,
    )
    return {"step_ids": step_ids, "step_correct": as_matrix(labels)}


def prm_labels(
    config: ml_collections.ConfigDict, offline: OfflineSet, setting: TaskSetting, step_ids: np.ndarray, width: int
) -> np.ndarray:
    """[N, width] PRM judge labels of the steps in `step_ids`."""
    o = config.offline
    if not o.prm_dir:
        raise ValueError("offline.step_labels='prm' needs offline.prm_dir (a head exported by the 'prm' trainer)")
    models.check_same_vocabulary(o.prm_dir, setting.tokenizer, "PRM")
    head = models.from_pretrained_head(o.prm_dir, shardings=param_placement(setting.mesh))
    judge = PRMJudge(head, threshold=o.prm_threshold, rows=config.batch_size, mesh=setting.mesh)
    return judge.label(offline.batch.tokens, step_ids, width)


def write_judge_report(
    path: str, offline: OfflineSet, step_ids: np.ndarray, modes: dict[str, np.ndarray], extra: dict | None = None
) -> None:
    """`judges.judge_report` of each mode's [N, S] labels against `modes["oracle"]` (the ground truth, itself
    a row of the report) on the set's wrong responses, each cut to its own steps; under `"counts"` the wrong
    responses, each judge mode's mined steps and `extra` (the LLM judge's malformed answers). Without an oracle
    (a task with no step checker) only the counts are written."""
    width = max(x.shape[1] for x in modes.values())
    wrong = np.flatnonzero(offline.batch.rows["rewards"] <= 0.5)
    steps = [int(step_ids[i].max()) + 1 for i in wrong]

    def per_response(labels: np.ndarray) -> list[list[bool]]:
        labels = np.pad(labels, ((0, 0), (0, width - labels.shape[1])))
        return [list(map(bool, labels[i, :k])) for i, k in zip(wrong, steps, strict=True)]

    sizes = [step_token_counts(step_ids[i], k) for i, k in zip(wrong, steps, strict=True)]
    report: dict = {}
    if "oracle" in modes:  # a task without step truth gets the counts only
        report = judge_report({m: per_response(x) for m, x in modes.items()}, per_response(modes["oracle"]), sizes)
    mined = {f"{m}_mined_steps": float(sum(map(sum, per_response(x)))) for m, x in modes.items() if m != "oracle"}
    report["counts"] = {"wrong_responses": float(len(wrong)), **mined, **(extra or {})}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)


def step_texts(offline: OfflineSet, spans: Sequence[Sequence[tuple[int, int]]]) -> list[list[str]]:
    """Each response's step texts from its character spans (`segment`)."""
    return [[text[a:b] for a, b in found] for text, found in zip(offline.responses, spans, strict=True)]


def step_segmenter(setting: TaskSetting):
    """The task's own steps where it has a step checker (the units its ground truth labels), else the rule
    segmenter's."""
    return TaskSegmenter(setting.task) if hasattr(setting.task, "check_steps") else RuleSegmenter()


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


def llm_labels(
    config: ml_collections.ConfigDict, offline: OfflineSet, setting: TaskSetting, steps: list[list[str]], width: int
):
    """[N, width] LLM judge verdicts on the wrong responses' `steps` (correct responses: all False, never mined);
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
    g = offline.group_size
    wrong = [i for i in np.flatnonzero(offline.batch.rows["rewards"] <= 0.5) if steps[i]]
    problems = [offline.problems[i // g] for i in wrong]
    verdicts = judge.label([p.prompt for p in problems], [steps[i] for i in wrong], [p.answer for p in problems])
    out = np.zeros((len(offline.responses), width), bool)
    for i, v in zip(wrong, verdicts, strict=True):
        out[i, : len(v)] = v
    return out, judge.malformed


def judged_steps(config: ml_collections.ConfigDict, offline: OfflineSet, setting: TaskSetting):
    """The judges' labels for judge mode `offline.step_labels` of the task's own steps (or the rule segmenter's, for
    a task without a step checker), with every mode those judges allow scored against the ground truth, where
    there is one, in `<workdir>/judge_report.json`."""
    mode = config.offline.step_labels
    ids, spans = segment(offline, setting, step_segmenter(setting))
    width = max([len(x) for x in spans] + [1])
    modes, extra = {}, {}
    if hasattr(setting.task, "check_steps"):
        oracle = oracle_labels(offline, setting)
        modes["oracle"] = np.pad(oracle, ((0, 0), (0, max(0, width - oracle.shape[1]))))[:, :width]
    if "prm" in JUDGES[mode]:
        modes["prm"] = prm_labels(config, offline, setting, ids, width)
    if "llm" in JUDGES[mode]:
        modes["llm"], extra["llm_malformed"] = llm_labels(config, offline, setting, step_texts(offline, spans), width)
    if len(JUDGES[mode]) == 2:
        for both in ("consensus", "or"):
            modes[both] = np.asarray(combine(both, llm=modes["llm"].tolist(), prm=modes["prm"].tolist()), bool)
    path = os.path.join(config.workdir, "judge_report.json")
    parallel.main_process_first("judge_report", lambda: write_judge_report(path, offline, ids, modes, extra))
    return {"step_ids": ids, "step_correct": modes[mode]}
