"""The LLM judge (BCPG-NSA stage 3, ALGORITHMS.md section 3.2): a generative model, driven by the in-JAX sampler,
reads the problem, the reference answer and the numbered steps of a response and answers with one 0/1 verdict per
step.

The prompt carries the rules of the paper's judge [secondary: the same group's "Beyond the First Error" prompt]:
a step with a calculation, derivation or logic error is 0; a step that builds on an earlier error without
correcting it is 0 (error propagation); a step that starts a correct new approach or corrects the error is 1 (error
cessation); the final step is 0 unless its answer matches the reference. The answer is a JSON-style list such as
`[1, 1, 0]`. Two prompt styles: "full" (the rules in words, for any local instruct checkpoint, in its chat template
through the caller's `prompt_fn`) and "compact" (problem, reference and steps only, for a small model fine-tuned on
verdicts, as in the miniature: `verdict_examples` makes its training pairs from ground-truth labels).

Model output is untrusted: `parse_verdicts` reads the first bracketed list and accepts it only when it holds exactly
one 0/1 per step; anything else is malformed, every step of that response counts as "not correct", and the
malformed responses are counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from nsa_jax import parallel, sampling

STYLES = ("full", "compact")
RULES = (
    "Score every step 1 if it is correct, or 0 if it contains a calculation, derivation or logic error.\n"
    "Rule 1: a step that builds on an earlier error without a new idea or a correction is 0.\n"
    "Rule 2: a step that starts a correct new approach or corrects the earlier error is 1.\n"
    "Rule 3: the final step is 0 unless its answer matches the reference answer.\n"
    "Answer with a list of the step scores only, for example [1, 1, 0]."
)
_LIST = re.compile(r"\[([^\[\]]*)\]")
_TRUE, _FALSE = {"1", "true"}, {"0", "false"}


def judge_prompt(problem: str, steps: Sequence[str], reference: str, *, style: str = "full") -> str:
    """The judge's prompt text for one response cut into `steps`."""
    if style not in STYLES:
        raise ValueError(f"judge prompt style {style!r} is not one of {STYLES}")
    numbered = "\n".join(f"{k + 1}) {s.strip()}" for k, s in enumerate(steps))
    if style == "compact":
        return f"{problem}\nref {reference}\n{numbered}\nverdict:"
    return (
        "You are checking a solution to a problem step by step.\n"
        f"Problem: {problem}\nReference answer: {reference}\nSteps:\n{numbered}\n\n{RULES}"
    )


def verdict_text(labels: Sequence[bool]) -> str:
    """The answer a judge should give for `labels`, e.g. `[1, 1, 0]` (the fine-tuning target)."""
    return "[" + ", ".join("1" if x else "0" for x in labels) + "]"


def parse_verdicts(text: str, num_steps: int) -> list[bool] | None:
    """The verdicts of the first bracketed list in `text` when it holds exactly `num_steps` items, each 0/1 (or
    true/false); None when it is malformed (no list, other items, another length)."""
    match = _LIST.search(text)
    if match is None:
        return None
    items = [x.strip().strip("\"'").lower() for x in match.group(1).split(",")] if match.group(1).strip() else []
    if len(items) != num_steps or any(x not in _TRUE | _FALSE for x in items):
        return None
    return [x in _TRUE for x in items]


def verdict_examples(
    problems: Sequence[str], steps: Sequence[Sequence[str]], references: Sequence[str], labels: Sequence[Sequence[bool]]
) -> list[tuple[str, str]]:
    """(compact judge prompt, verdict) pairs from ground-truth step labels: the data that fine-tunes a small model
    into a judge (its quality is then measured on held-out responses, not assumed)."""
    return [
        (judge_prompt(p, s, r, style="compact"), verdict_text(y))
        for p, s, r, y in zip(problems, steps, references, labels, strict=True)
    ]


class LLMJudge:
    """Step verdicts of a generative model: greedy decoding of `batch_size` prompts at a time (the last chunk padded
    with repeats, so every call has one shape), `prompt_fn` around the judge prompt ("plain" format or a chat
    template), at most `max_new_tokens` answer tokens."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        style: str = "full",
        prompt_fn: Callable[[str], str] = lambda text: text,
        max_prompt_len: int = 1024,
        max_new_tokens: int = 64,
        batch_size: int = 8,
        mesh: Any = None,
    ):
        if style not in STYLES:
            raise ValueError(f"judge prompt style {style!r} is not one of {STYLES}")
        self.model, self.tokenizer, self.style, self.prompt_fn = model, tokenizer, style, prompt_fn
        self.max_prompt_len, self.max_new_tokens, self.batch_size, self.mesh = (
            max_prompt_len,
            max_new_tokens,
            batch_size,
            mesh,
        )
        self.malformed = 0  # responses whose answer did not parse, over this judge's life

    def answers(self, prompts: Sequence[str]) -> list[str]:
        """The judge's raw answer to each prompt text."""
        tok = self.tokenizer
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = [self.prompt_fn(p) for p in prompts[start : start + self.batch_size]]
            padded = chunk + [chunk[0]] * (self.batch_size - len(chunk))
            ids = [tok.encode(t, add_special_tokens=False) for t in padded]
            longest = max(len(x) for x in ids)
            if longest > self.max_prompt_len:
                raise ValueError(f"a judge prompt has {longest} tokens, more than max_prompt_len={self.max_prompt_len}")
            ids, mask = sampling.left_pad(ids, None, width=self.max_prompt_len, pad_id=pad_id)
            result = sampling.generate(
                self.model,
                ids,
                attention_mask=mask,
                max_new_tokens=self.max_new_tokens,
                key=jax.random.PRNGKey(0),
                greedy=True,
                pad_id=pad_id,
                mesh=self.mesh,
            )
            result = parallel.to_host(result)
            tokens, lengths = np.asarray(result.tokens), np.asarray(result.mask).sum(axis=1)
            texts = [tok.decode(row[: int(n)].tolist(), skip_special_tokens=True) for row, n in zip(tokens, lengths)]
            out += texts[: len(chunk)]
        return out

    def label(
        self, problems: Sequence[str], steps: Sequence[Sequence[str]], references: Sequence[str]
    ) -> list[list[bool]]:
        """One verdict per step of each response (a malformed answer: all False, and counted in `malformed`)."""
        prompts = [judge_prompt(p, s, r, style=self.style) for p, s, r in zip(problems, steps, references, strict=True)]
        labels = []
        for answer, s in zip(self.answers(prompts), steps, strict=True):
            parsed = parse_verdicts(answer, len(s))
            if parsed is None:
                self.malformed += 1
                parsed = [False] * len(s)
            labels.append(parsed)
        return labels
