"""Rollouts: sample G responses per prompt with the in-JAX sampler, decode, verify, and lay them out for training.

A rollout is kept on the host as numpy arrays of one fixed shape `[B, T]` with `T = max_prompt_len +
max_new_tokens` (prompts left-padded to `max_prompt_len`, responses right-padded), so the train step compiles once
for the whole run. Per-token arrays are aligned with `input_ids`: column `t` of `loss_mask` / `sampler_logp` /
`logp_old` refers to token `t` predicted from tokens `< t` (column 0 is never a response token).

Batches are group-major (ALGORITHMS.md section 0): rows `q*G .. q*G+G-1` are the responses to prompt `q`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from nsa_jax import sampling, tasks
from nsa_jax.train.data import Tokenizer


@dataclasses.dataclass(frozen=True)
class Rollout:
    """One batch of sampled, verified responses (host arrays, group-major, `B = Q * G`).

    input_ids, attention_mask: [B, T] int32, prompt (left-padded) then response (right-padded).
    loss_mask: [B, T] float32, 1 on response tokens (the stop token included).
    sampler_logp: [B, T] float32, the sampler's log-prob of each response token under the untruncated policy at
        temperature 1 (what the trainer's own log-prob should equal, up to numerics).
    rewards: [B] float32 in {0, 1} from the task's verifier.
    difficulty: [B] int32, the problem's difficulty level.
    responses: the decoded response texts.
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    loss_mask: np.ndarray
    sampler_logp: np.ndarray
    rewards: np.ndarray
    difficulty: np.ndarray
    responses: list[str]
    group_size: int

    def batch(self) -> dict[str, np.ndarray]:
        """The arrays the train step reads (texts and bookkeeping left out)."""
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "loss_mask": self.loss_mask,
            "sampler_logp": self.sampler_logp,
            "rewards": self.rewards,
        }


def group_outcomes(rewards: np.ndarray, group_size: int) -> dict[str, float]:
    """Share of all-wrong and all-right groups (the groups GRPO learns nothing from) and the mean reward."""
    correct = np.asarray(rewards).reshape(-1, group_size) > 0.5  # [Q, G]
    return {
        "reward": float(correct.mean()),
        "all_wrong_frac": float((~correct.any(axis=1)).mean()),
        "all_right_frac": float(correct.all(axis=1).mean()),
    }


def encode_prompts(texts: Sequence[str], tokenizer: Tokenizer, width: int, pad_id: int) -> tuple[np.ndarray, ...]:
    """Token ids and mask, both [len(texts), width] int32, left-padded; a prompt longer than `width` is an error
    (truncating the front of a question would change the problem)."""
    ids = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
    longest = max(len(x) for x in ids)
    if longest > width:
        raise ValueError(f"a prompt has {longest} tokens, more than rl.max_prompt_len={width}: {texts[0][:60]!r}...")
    return sampling.left_pad(ids, None, width=width, pad_id=pad_id)


def decode(tokenizer: Any, tokens: np.ndarray, mask: np.ndarray) -> list[str]:
    """Response texts from [B, N] tokens, each cut at its mask (special tokens such as EOS dropped)."""
    return [tokenizer.decode(row[: int(m.sum())].tolist(), skip_special_tokens=True) for row, m in zip(tokens, mask)]


def sample_responses(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    n: int,
    max_prompt_len: int,
    max_new_tokens: int,
    key: jax.Array,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    mesh: Any = None,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Samples `n` responses per prompt and returns the teacher-forcing arrays (see `Rollout`) and the texts."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    ids, mask = encode_prompts(prompts, tokenizer, max_prompt_len, pad_id)  # [Q, P]
    out = sampling.generate(
        model,
        ids,
        attention_mask=mask,
        max_new_tokens=max_new_tokens,
        key=key,
        n=n,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        pad_id=pad_id,
        mesh=mesh,
    )
    out = jax.device_get(out)
    tokens, resp_mask = np.asarray(out.tokens, np.int32), np.asarray(out.mask, np.int32)  # [B, N]
    prompt_ids, prompt_mask = np.repeat(ids, n, axis=0), np.repeat(mask, n, axis=0)  # [B, P]
    zeros = np.zeros(prompt_ids.shape, np.float32)
    arrays = {
        "input_ids": np.concatenate([prompt_ids, tokens], axis=1),
        "attention_mask": np.concatenate([prompt_mask, resp_mask], axis=1),
        "loss_mask": np.concatenate([zeros, resp_mask.astype(np.float32)], axis=1),
        "sampler_logp": np.concatenate([zeros, np.asarray(out.policy_logprobs, np.float32)], axis=1),
    }
    return arrays, decode(tokenizer, tokens, resp_mask)


def collect(
    model: Any,
    tokenizer: Any,
    problems: Sequence[tasks.Problem],
    *,
    group_size: int,
    prompt_fn: Callable[[str], str],
    verify_deadline_s: float = 5.0,
    **sample_kwargs: Any,
) -> Rollout:
    """Samples `group_size` responses to each problem and scores them with the task verifier (batched,
    deadline-bounded: `tasks.verify_answers`)."""
    arrays, responses = sample_responses(
        model, tokenizer, [prompt_fn(p.prompt) for p in problems], n=group_size, **sample_kwargs
    )
    references = [p.answer for p in problems for _ in range(group_size)]
    rewards = tasks.verify_answers(responses, references, deadline_s=verify_deadline_s).astype(np.float32)
    difficulty = np.repeat(np.array([p.difficulty for p in problems], np.int32), group_size)
    return Rollout(**arrays, rewards=rewards, difficulty=difficulty, responses=responses, group_size=group_size)


def width_quantum(width: int, max_widths: int = 8) -> int:
    """Step by which `used_columns` rounds widths: a multiple of 8 with at most `max_widths` steps up to
    `width`, so a run compiles its train step for at most that many shapes."""
    return 8 * -(-width // (8 * max_widths))


def used_columns(attention_mask: np.ndarray, quantum: int) -> slice:
    """The columns of a rollout that hold a token in some row, widened to a multiple of `quantum`.

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


def micro_batch_layout(num_rows: int, group_size: int, micro_batches: int) -> np.ndarray:
    """Row order that keeps whole groups inside each micro-batch of the backbone's train step.

    `step.split_micro_batches` gives micro-batch `m` the rows `m, m + M, m + 2M, ...`; group statistics (GRPO,
    LENS, NGRPO) need each micro-batch to hold whole, contiguous groups. Taking rows in this order puts groups
    `[m * Q/M, (m+1) * Q/M)` in micro-batch `m`, in their original order.
    """
    groups = num_rows // group_size
    if num_rows % group_size or groups % micro_batches:
        raise ValueError(
            f"{groups} groups of {group_size} do not split into {micro_batches} micro-batches of whole groups"
        )
    return np.arange(num_rows).reshape(micro_batches, num_rows // micro_batches).T.reshape(-1)
