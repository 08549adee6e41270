"""Step segmentation (BCPG-NSA stage 2, ALGORITHMS.md section 3.1): a response -> its steps -> per-token step ids.

One interface, `Segmenter.spans(response, problem) -> [(start, end)]` character spans of the steps, with two
implementations: `RuleSegmenter` (line breaks, blank lines or sentence ends, with a minimum step length; the
paper used a learned sentence segmenter, SaT [secondary]) and `TaskSegmenter` (a built-in task's own step
boundaries, the ones its ground-truth step checker labels). `token_step_ids` maps spans onto the response's tokens
through the characters each token decodes to. No JAX here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from nsa_jax import tasks

Span = tuple[int, int]
# Where each rule ends a step: after the matched separator.
_SEPARATORS = {
    "lines": re.compile(r"\n+"),
    "blank_lines": re.compile(r"\n[ \t]*\n\s*"),
    "sentences": re.compile(r"(?<=[.!?])\s+|\n+"),
}


class Segmenter(Protocol):
    def spans(self, response: str, problem: tasks.Problem | None = None) -> list[Span]:
        """Character spans `[start, end)` of the steps of `response`, in order and disjoint."""
        ...


@dataclasses.dataclass(frozen=True)
class RuleSegmenter:
    """Steps end at `split_on` separators ("lines", "blank_lines" or "sentences": `.`, `!`, `?` then whitespace,
    or a line break). A step with fewer than `min_chars` non-blank characters joins the next one (the last joins
    the one before), so stray fragments ("So", "1.") never become steps of their own."""

    split_on: str = "lines"
    min_chars: int = 1

    def __post_init__(self):
        if self.split_on not in _SEPARATORS:
            raise ValueError(f"split_on={self.split_on!r} is not one of {sorted(_SEPARATORS)}")

    def spans(self, response: str, problem: tasks.Problem | None = None) -> list[Span]:
        del problem  # rules read the text only
        pieces, start = [], 0
        for sep in _SEPARATORS[self.split_on].finditer(response):
            pieces.append((start, sep.start()))
            start = sep.end()
        pieces.append((start, len(response)))
        steps = [_strip(response, s) for s in pieces if response[s[0] : s[1]].strip()]
        return _merge_short(response, steps, self.min_chars)


@dataclasses.dataclass(frozen=True)
class TaskSegmenter:
    """A built-in task's own steps (one per non-blank line, `task.check_steps`), the boundaries its ground-truth
    labels refer to."""

    task: Any

    def spans(self, response: str, problem: tasks.Problem | None = None) -> list[Span]:
        if problem is None:
            raise ValueError("TaskSegmenter needs the problem (the task's step checker reads it)")
        return list(self.task.check_steps(response, problem).spans)


def _strip(text: str, span: Span) -> Span:
    """`span` without its leading and trailing whitespace."""
    start, end = span
    piece = text[start:end]
    start += len(piece) - len(piece.lstrip())
    return start, start + len(piece.strip())


def _merge_short(text: str, steps: list[Span], min_chars: int) -> list[Span]:
    out: list[Span] = []
    pending: int | None = None  # start of a short step waiting to join the next
    for start, end in steps:
        start = start if pending is None else pending
        if len(re.sub(r"\s", "", text[start:end])) < min_chars:
            pending = start
            continue
        out.append((start, end))
        pending = None
    if pending is not None:
        if out:
            out[-1] = (out[-1][0], steps[-1][1])
        else:
            out.append((pending, steps[-1][1]))
    return out


def token_offsets(tokenizer: Any, token_ids: Sequence[int]) -> list[Span]:
    """The character span of each token in `tokenizer.decode(token_ids, skip_special_tokens=True)` (the text the
    rollout verified), from the decoded lengths of growing prefixes: exact for the tokens actually sampled, which a
    re-tokenisation of the text need not reproduce. Special tokens (EOS) get an empty span at their position."""
    ids = [int(t) for t in token_ids]
    out, previous = [], 0
    for k in range(len(ids)):
        length = len(tokenizer.decode(ids[: k + 1], skip_special_tokens=True))
        length = max(length, previous)  # a partial multi-byte character can decode shorter than its prefix
        out.append((previous, length))
        previous = length
    return out


def token_step_ids(spans: Sequence[Span], offsets: Sequence[Span]) -> np.ndarray:
    """[N] int32 step index of each response token from the steps' character spans and the tokens' offsets.

    A token belongs to the step its first character falls in; a step boundary inside a token therefore goes to
    the token's (first) step, and whitespace between steps to the step before it (leading whitespace to the first
    step). An empty token (a special token such as EOS) takes the previous token's step. -1 only when the response
    has no step at all."""
    ids = np.full(len(offsets), -1, np.int32)
    if not spans:
        return ids
    starts = np.array([s for s, _ in spans])
    current = 0
    for t, (start, end) in enumerate(offsets):
        if end > start:
            current = max(int(np.searchsorted(starts, start, side="right")) - 1, 0)
        ids[t] = current
    return ids


def response_step_ids(
    segmenter: Segmenter,
    tokenizer: Any,
    response_tokens: Sequence[int],
    problem: tasks.Problem | None = None,
) -> tuple[np.ndarray, list[Span]]:
    """Per-token step ids of one response (its tokens only, up to and including EOS) and the steps' character
    spans in its decoded text."""
    offsets = token_offsets(tokenizer, response_tokens)
    text = tokenizer.decode([int(t) for t in response_tokens], skip_special_tokens=True)
    spans = segmenter.spans(text, problem)
    return token_step_ids(spans, offsets), spans
