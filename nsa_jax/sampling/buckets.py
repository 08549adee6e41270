"""Static shapes for generation: length buckets and left-padded prompt batches.

XLA compiles one program per input shape. Rounding the prompt length and the generation length up to a few
bucket sizes bounds the number of programs a run ever compiles (one per bucket pair actually used) while wasting
at most half of the padded work with power-of-two buckets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Buckets:
    """Lengths that prompt and generation lengths are rounded up to.

    min_len: the smallest bucket (default 16); lengths above it go to the next power of two.
    sizes: explicit ascending bucket sizes instead of powers of two (a length above the largest keeps its own size).
    max_prompt_len: the longest prompt accepted (longer raises ValueError); None means the model's
        `max_position_embeddings`. Prompt buckets are capped at it, so a prompt of exactly this length works.
    cache_block, max_segments: decoding runs in segments of at least `cache_block` tokens (at most `max_segments`
        of them), and the KV cache holds the prompt plus the tokens up to the end of the current segment, so
        attention reads the filled part of the cache rather than all of it; rows that have finished are dropped
        between segments (`segment_ends`). A generation bucket up to `cache_block` is one segment.
    """

    min_len: int = 16
    sizes: tuple[int, ...] | None = None
    max_prompt_len: int | None = None
    cache_block: int = 64
    max_segments: int = 8

    def __post_init__(self):
        if self.min_len < 1:
            raise ValueError(f"Buckets.min_len must be >= 1, got {self.min_len}")
        if self.cache_block < 1 or self.max_segments < 1:
            raise ValueError(
                f"Buckets.cache_block and max_segments must be >= 1, got {self.cache_block}, {self.max_segments}"
            )
        if self.sizes is not None and list(self.sizes) != sorted(set(self.sizes)):
            raise ValueError(f"Buckets.sizes must be strictly ascending, got {self.sizes}")

    def round_up(self, length: int, cap: int | None = None) -> int:
        """The bucket for `length`: the smallest bucket >= length, never above `cap` (itself >= length)."""
        if self.sizes is not None:
            bucket = next((s for s in self.sizes if s >= length), length)
        else:
            bucket = max(self.min_len, 1 << max(length - 1, 0).bit_length())
        return bucket if cap is None else min(bucket, cap)

    def segment_ends(self, gen_len: int) -> tuple[int, ...]:
        """The response lengths at which the decode segments of a `gen_len` generation bucket end: equal segments
        of `max(cache_block, ceil(gen_len / max_segments))` tokens, the last one cut at `gen_len`."""
        block = max(self.cache_block, -(-gen_len // self.max_segments))
        return (*range(block, gen_len, block), gen_len)


def left_pad(
    prompts: np.ndarray | Sequence[Sequence[int]],
    attention_mask: np.ndarray | None,
    *,
    width: int | None = None,
    pad_id: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Prompts (an int array [B, P] with optional {0,1} mask, or a list of token lists) -> ids, mask [B, width].

    Real tokens are moved to the right end of each row, in order, whatever side the caller padded on: the decode
    loop then writes every row's next token into the same cache slot and reads the last column as the last prompt
    token. `width` defaults to the longest prompt. Raises ValueError on an empty prompt.
    """
    if isinstance(prompts, np.ndarray) or hasattr(prompts, "shape"):
        ids = np.asarray(prompts, np.int32)
        if ids.ndim != 2:
            raise ValueError(f"prompts must be [B, P] token ids, got shape {ids.shape}")
        mask = np.ones(ids.shape, bool) if attention_mask is None else np.asarray(attention_mask).astype(bool)
        if mask.shape != ids.shape:
            raise ValueError(f"attention_mask shape {mask.shape} differs from prompts shape {ids.shape}")
    else:
        if attention_mask is not None:
            raise ValueError("attention_mask is only accepted with array prompts, not with lists of token lists")
        longest = max((len(p) for p in prompts), default=0)
        ids = np.full((len(prompts), longest), pad_id, np.int32)
        mask = np.zeros((len(prompts), longest), bool)
        for row, tokens in enumerate(prompts):
            if len(tokens):
                ids[row, longest - len(tokens) :] = tokens
                mask[row, longest - len(tokens) :] = True
    lengths = mask.sum(axis=1)  # [B]
    if ids.shape[0] == 0 or (lengths == 0).any():
        raise ValueError(f"every prompt needs at least one token; prompt lengths are {lengths.tolist()}")
    order = np.argsort(mask, axis=1, kind="stable")  # pads first, real tokens after, each in their order
    ids = np.where(np.take_along_axis(mask, order, axis=1), np.take_along_axis(ids, order, axis=1), pad_id)
    mask = np.take_along_axis(mask, order, axis=1)
    width = ids.shape[1] if width is None else width
    if width < lengths.max():
        raise ValueError(f"width {width} is shorter than the longest prompt ({lengths.max()} tokens)")
    if width < ids.shape[1]:  # only pad columns are cut
        ids, mask = ids[:, ids.shape[1] - width :], mask[:, ids.shape[1] - width :]
    extra = width - ids.shape[1]
    ids = np.pad(ids, ((0, 0), (extra, 0)), constant_values=pad_id)
    mask = np.pad(mask, ((0, 0), (extra, 0)))
    return ids.astype(np.int32), mask.astype(np.int32)
