"""Rollouts: sample G responses per prompt with the in-JAX sampler, decode, score them with a reward function, and
lay them out for training.

A rollout is kept on the host as numpy arrays of one fixed shape `[B, T]` with `T = max_prompt_len +
max_new_tokens` (prompts left-padded to `max_prompt_len`, responses right-padded); trainers cut it to the band of
columns that hold tokens (`batch.token_band`). Per-token arrays are aligned with `input_ids`: column `t` of
`loss_mask` / `sampler_logp` / `logp_old` refers to token `t` predicted from tokens `< t` (column 0 is never a
response token).

Batches are group-major (ALGORITHMS.md section 0): rows `q*G .. q*G+G-1` are the responses to prompt `q`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from nsa_jax import parallel, sampling, tasks
from nsa_jax.rollouts.batch import Batch
from nsa_jax.rollouts.rewards import RewardFn


@dataclasses.dataclass(frozen=True)
class Rollout:
    """One batch of sampled, verified responses (host arrays, group-major, `B = Q * G`).

    input_ids, attention_mask: [B, T] int32, prompt (left-padded) then response (right-padded).
    loss_mask: [B, T] float32, 1 on response tokens (the stop token included).
    sampler_logp: [B, T] float32, the sampler's log-prob of each response token under the untruncated policy at
        temperature 1 (what the trainer's own log-prob should equal, up to numerics).
    rewards: [B] float32 from the reward function (the task's verifier: {0, 1}).
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

    def batch(self) -> Batch:
        """The arrays the train step reads (texts and bookkeeping left out)."""
        tokens = ("input_ids", "attention_mask", "loss_mask", "sampler_logp")
        return Batch(
            tokens={k: getattr(self, k) for k in tokens}, rows={"rewards": self.rewards}, group_size=self.group_size
        )


def encode_prompts(texts: Sequence[str], tokenizer: Any, width: int, pad_id: int) -> tuple[np.ndarray, ...]:
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
    out = parallel.to_host(out)  # every process holds the whole rollout (the batch is split over all devices)
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
    reward_fn: RewardFn,
    **sample_kwargs: Any,
) -> Rollout:
    """Samples `group_size` responses to each problem and scores them with `reward_fn` (for instance
    `rewards.verifier_reward(task)`). Under `jax.distributed` the reward function runs on process 0 only and its
    rewards are broadcast: a verifier with wall-clock deadlines could otherwise score differently on each process."""
    arrays, responses = sample_responses(
        model, tokenizer, [prompt_fn(p.prompt) for p in problems], n=group_size, **sample_kwargs
    )
    repeated = [p for p in problems for _ in range(group_size)]
    rewards = np.zeros(len(responses), np.float32)
    if parallel.is_main_process():
        rewards = np.asarray(reward_fn(repeated, responses), np.float32)
        if rewards.shape != (len(responses),):
            raise ValueError(f"reward_fn returned shape {rewards.shape} for {len(responses)} responses")
    rewards = parallel.broadcast_from_main(rewards)
    difficulty = np.repeat(np.array([p.difficulty for p in problems], np.int32), group_size)
    return Rollout(**arrays, rewards=rewards, difficulty=difficulty, responses=responses, group_size=group_size)
