"""A training batch on the host, and the statistics of a batch that trainers and reports share.

`Batch` keeps per-token and per-row arrays apart, because they travel differently: per-token arrays (`[B, T]`,
column `t` aligned with `input_ids[:, t]`) are cut with the token band, per-row arrays (`[B, ...]`: rewards, step
labels `[B, S]`, reference log-prob sums) never are. Both are sharded and micro-batched over rows by the train step.
A method that needs more inputs for its loss adds them with `with_tokens` / `with_rows` and reads them by name.

Batches are group-major (ALGORITHMS.md section 0): rows `q*G .. q*G+G-1` are the responses to prompt `q`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping

import numpy as np


@dataclasses.dataclass(frozen=True)
class Batch:
    """Host arrays of one group-major batch.

    tokens: per-token arrays `[B, T]` aligned with `input_ids` (which is one of them, with `attention_mask`).
    rows: per-row arrays `[B, ...]`.
    group_size: G, responses per prompt (1 for data without groups, such as SFT).
    """

    tokens: Mapping[str, np.ndarray]
    rows: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    group_size: int = 1

    def __post_init__(self):
        both = set(self.tokens) & set(self.rows)
        if both:
            raise ValueError(f"batch arrays {sorted(both)} are declared both per token and per row")
        width = self.tokens["input_ids"].shape
        for name, value in {**self.tokens, **self.rows}.items():
            if value.shape[0] != width[0]:
                raise ValueError(f"batch array {name!r} has {value.shape[0]} rows, input_ids has {width[0]}")
        for name, value in self.tokens.items():
            if value.shape[:2] != width:
                raise ValueError(f"per-token array {name!r} has shape {value.shape}, input_ids {width}")
        if width[0] % self.group_size:
            raise ValueError(f"{width[0]} rows do not form whole groups of group_size={self.group_size}")

    def __len__(self) -> int:
        return self.tokens["input_ids"].shape[0]

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by name: what the train step and the loss read."""
        return {**self.tokens, **self.rows}

    def with_tokens(self, **arrays: np.ndarray) -> Batch:
        return dataclasses.replace(self, tokens={**self.tokens, **arrays})

    def with_rows(self, **arrays: np.ndarray) -> Batch:
        return dataclasses.replace(self, rows={**self.rows, **arrays})

    def select(self, index: np.ndarray) -> Batch:
        """Rows `index` as a batch (keep whole groups in order for `group_size` to stay meaningful)."""
        return Batch(
            {k: v[index] for k, v in self.tokens.items()}, {k: v[index] for k, v in self.rows.items()}, self.group_size
        )

    def take(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """The arrays of any rows `index` (host dict, ready for the train step; no group check)."""
        return {k: v[index] for k, v in self.arrays().items()}

    def cut(self, cols: slice) -> Batch:
        """Only columns `cols` of the per-token arrays; per-row arrays unchanged."""
        return dataclasses.replace(self, tokens={k: v[:, cols] for k, v in self.tokens.items()})


def split_by_prompt(batch: Batch, heldout_frac: float) -> tuple[Batch, Batch]:
    """(training, held-out) groups of `batch`: a group is held out when the hash of its first row's prompt tokens
    (attended, outside `loss_mask`) falls in the first `heldout_frac` of the hash range. Every group of one prompt
    lands on the same side, whatever the source, so a judge or reward model is never evaluated on a prompt it was
    trained on."""
    ids, attention, loss = (batch.tokens[k] for k in ("input_ids", "attention_mask", "loss_mask"))
    g = batch.group_size
    held = np.zeros(len(batch) // g, bool)
    for q in range(len(held)):
        row = q * g
        prompt = ids[row][(attention[row] > 0) & (loss[row] == 0)].astype(np.int32)
        digest = hashlib.sha256(prompt.tobytes()).digest()
        held[q] = int.from_bytes(digest[:8], "little") / 2.0**64 < heldout_frac
    rows = lambda keep: np.flatnonzero(np.repeat(keep, g))
    return batch.select(rows(~held)), batch.select(rows(held))


def group_outcomes(rewards: np.ndarray, group_size: int) -> dict[str, float]:
    """Exact shares of all-wrong and all-right groups (the groups GRPO learns nothing from) and the mean reward."""
    correct = np.asarray(rewards).reshape(-1, group_size) > 0.5  # [Q, G]
    return {
        "reward": float(correct.mean()),
        "all_wrong_frac": float((~correct.any(axis=1)).mean()),
        "all_right_frac": float(correct.all(axis=1).mean()),
    }


def homogeneous_groups(rewards: np.ndarray, group_size: int) -> np.ndarray:
    """[B] bool, True on the rows of groups whose responses are all right or all wrong."""
    correct = np.asarray(rewards).reshape(-1, group_size) > 0.5
    same = correct.all(axis=1) | ~correct.any(axis=1)
    return np.repeat(same, group_size)


def mismatch_stats(logp_old: np.ndarray, sampler_logp: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Mean / max / min over response tokens of `exp(trainer logp - sampler logp)` (1 when both agree)."""
    on = mask > 0
    if not on.any():
        return {"mismatch_ratio_mean": 1.0, "mismatch_ratio_max": 1.0, "mismatch_ratio_min": 1.0}
    ratio = np.exp(np.clip(logp_old[on] - sampler_logp[on], -20.0, 20.0))
    return {
        "mismatch_ratio_mean": float(ratio.mean()),
        "mismatch_ratio_max": float(ratio.max()),
        "mismatch_ratio_min": float(ratio.min()),
    }


def width_quantum(width: int, max_widths: int = 8, multiple: int = 8) -> int:
    """Step by which a shape's width is rounded: the smallest multiple of `multiple` with at most `max_widths`
    steps up to `width`, so a run compiles its train step for at most that many widths. `used_columns` cuts the
    token band with the default; the RL update rounds its packed widths with 16 steps of a multiple of 4."""
    return multiple * -(-width // (multiple * max_widths))


def used_columns(attention_mask: np.ndarray, quantum: int) -> slice:
    """The columns of a batch that hold a token in some row, widened to a multiple of `quantum`.

    Prompts are left-padded to `max_prompt_len` and responses right-padded to `max_new_tokens`, so the tokens of a
    batch sit in one contiguous band of columns; everything outside it is padding in every row, and dropping it
    changes no log-prob (positions come from the mask) and no loss (the columns hold no response token). The band
    is widened leftwards (rightwards at the left edge) to a multiple of `quantum`, never past the array.
    """
    width = attention_mask.shape[1]
    used = np.flatnonzero(attention_mask.any(axis=0))
    if used.size == 0:
        return slice(0, width)
    lo, hi = int(used[0]), int(used[-1]) + 1
    keep = min(width, -(-(hi - lo) // quantum) * quantum)
    lo = max(0, min(lo, hi - keep))
    return slice(lo, lo + keep)


def token_band(batch: Batch) -> Batch:
    """`batch` cut to the band of columns that hold tokens (`used_columns`, at most 8 widths per full width)."""
    mask = batch.tokens["attention_mask"]
    return batch.cut(used_columns(mask, width_quantum(mask.shape[1])))


def response_start(batch: Batch) -> int:
    """The first column that holds a loss token in some row: in a rollout's layout (prompts left-padded to a fixed
    width, responses after it) the prompts' width, whatever budget the rollout was sampled with."""
    used = np.flatnonzero(batch.tokens["loss_mask"].any(axis=0))
    return int(used[0]) if used.size else 0


def prompt_apart(batch: Batch, prompt_width: int) -> Batch | None:
    """The batch with each group's prompt set apart, for a forward that computes it once per group.

    The first `prompt_width` columns (a rollout's left-padded prompts) become the per-row arrays `prompt_ids` and
    `prompt_mask` `[B, P]`, cut to the columns any prompt uses; the per-token arrays keep the rest (the responses,
    `T - prompt_width` columns) cut to their token band. Column 0 of the per-token arrays is then the first
    response token, predicted from the prompt's last column. Each part has at most 8 widths. None when the layout
    does not allow it: groups of one, a prompt that differs within its group, or loss tokens among the prompt's
    columns.
    """
    tokens, g = batch.tokens, batch.group_size
    width = tokens["input_ids"].shape[1]
    if g < 2 or not 0 < prompt_width < width or tokens["loss_mask"][:, :prompt_width].any():
        return None
    ids, mask = tokens["input_ids"][:, :prompt_width], tokens["attention_mask"][:, :prompt_width]
    for x in (ids, mask):
        grouped = x.reshape(-1, g, prompt_width)
        if (grouped != grouped[:, :1]).any():
            return None
    used = used_columns(mask, width_quantum(prompt_width))
    rest = token_band(batch.cut(slice(prompt_width, width)))
    return rest.with_rows(prompt_ids=ids[:, used], prompt_mask=mask[:, used])
