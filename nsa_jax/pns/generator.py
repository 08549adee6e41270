"""The negative generator's reward (PNS, ALGORITHMS.md section 4): `composite_reward` as a pluggable
`reward_fn(problems, responses)` for the online RL trainer, so "reverse RL" is the ordinary RL loop with another
reward.

Its four inputs per response: the format gate (`format_ok`), correctness (the task's verifier), the reward model's
score (a scalar head, `models.heads`, at the response's last token) and the chain-of-thought score (the share of the
task's steps the PRM judge calls correct, `judges.PRMJudge`). The reward model and PRM run on the calling process's
first device, unsharded: the RL trainer computes rewards on process 0 only, and a jitted call on every device of a
multi-process mesh from one process would wait forever. Small reward models (the miniature's, a few hundred
million parameters) fit there; a larger one needs its own sharded scoring, not yet here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from nsa_jax import judges, models, parallel, tasks
from nsa_jax.pns.reward import composite_reward, cot_score, format_ok


def encode_responses(
    tokenizer, prompts: Sequence[str], responses: Sequence[str], width: int
) -> tuple[dict[str, np.ndarray], list[slice]]:
    """Prompt + response + EOS per row, right-padded to `width` ([N, width] `input_ids` / `attention_mask`), and
    each row's response columns; a longer row is an error naming it."""
    ids, mask, starts = models.encode_rows(tokenizer, prompts, responses, width, limit=f"the scoring width {width}")
    spans = [slice(int(s), int(n)) for s, n in zip(starts, mask.sum(axis=1), strict=True)]
    return {"input_ids": ids, "attention_mask": mask}, spans


class RewardModelScorer:
    """`scorer(problems, responses)` -> [B] float32 reward-model scores (the head's score at each response's EOS),
    `rows` rows per forward, prompts through `prompt_fn`, rows right-padded to `width` tokens."""

    def __init__(self, head: models.ScalarHead, tokenizer, *, prompt_fn: Callable[[str], str], width: int, rows: int):
        self.head, self.tokenizer, self.prompt_fn, self.width, self.rows = head, tokenizer, prompt_fn, width, rows

    def encode(self, problems: Sequence[tasks.Problem], responses: Sequence[str]):
        return encode_responses(self.tokenizer, [self.prompt_fn(p.prompt) for p in problems], responses, self.width)

    def scores(self, tokens: dict[str, np.ndarray]) -> np.ndarray:
        """[N] scores of encoded rows (`encode`)."""
        arrays = [tokens[k] for k in ("input_ids", "attention_mask")]
        return parallel.map_rows(models.sequence_scores, self.head, arrays, rows=self.rows)

    def __call__(self, problems: Sequence[tasks.Problem], responses: Sequence[str]) -> np.ndarray:
        return self.scores(self.encode(problems, responses)[0])


class CompositeReward:
    """`reward_fn(problems, responses)` -> [B] float32 `composite_reward`, from the task's verifier, the format
    gate (`style`), the reward model `rm` and the PRM judge `prm` on the task's own steps."""

    def __init__(
        self,
        task: tasks.Task,
        tokenizer,
        *,
        rm: models.ScalarHead,
        prm: judges.PRMJudge,
        prompt_fn: Callable[[str], str],
        width: int,
        rows: int = 64,
        style: str = "hash",
        deadline_s: float = 5.0,
        weights: dict[str, float] | None = None,
    ):
        self.task, self.tokenizer, self.prm = task, tokenizer, prm
        self.rm = RewardModelScorer(rm, tokenizer, prompt_fn=prompt_fn, width=width, rows=rows)
        self.style, self.deadline_s = style, deadline_s
        self.weights = dict(weights or {})
        self.segmenter = judges.TaskSegmenter(task)

    def parts(self, problems: Sequence[tasks.Problem], responses: Sequence[str]) -> dict[str, np.ndarray]:
        """The four inputs of `composite_reward` per response ([B] arrays): format_ok, correct, rm_score, cot_score."""
        correct = np.asarray(self.task.verify_batch(responses, problems, deadline_s=self.deadline_s), np.float32)
        fmt = np.asarray([format_ok(r, style=self.style) for r in responses], np.float32)
        tokens, spans = self.rm.encode(problems, responses)
        rm = self.rm.scores(tokens)
        step_ids = np.full(tokens["input_ids"].shape, -1, np.int32)
        steps = []
        for i, (span, problem) in enumerate(zip(spans, problems, strict=True)):
            ids, found = judges.response_step_ids(self.segmenter, self.tokenizer, tokens["input_ids"][i, span], problem)
            step_ids[i, span] = ids
            steps.append(len(found))
        labels = self.prm.label(tokens, step_ids, max(steps + [1]))
        cot = np.asarray([cot_score(labels[i, :k]) for i, k in enumerate(steps)], np.float32)
        return {"format_ok": fmt, "correct": correct, "rm_score": rm, "cot_score": cot}

    def __call__(self, problems: Sequence[tasks.Problem], responses: Sequence[str]) -> np.ndarray:
        p = self.parts(problems, responses)
        return np.asarray(composite_reward(p["format_ok"], p["correct"], p["rm_score"], p["cot_score"], **self.weights))
