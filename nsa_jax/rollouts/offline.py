"""Offline data sets of rollouts (BCPG-NSA stage 1): K responses per prompt from a behaviour policy, written once.

Every offline method (BCPG, BCPG-NSA, GRPO-offline, TOPR, RFT) trains on the same stored set. A set keeps, per
response, the tokens, the behaviour policy's per-token log-probs (`logp_b`: the untruncated policy at temperature
1, the distribution the behaviour constraint compares against), the reward and the text; per group, the problem.
As in the paper, groups whose K responses are all right or all wrong are dropped, and counted.

On disk (a researcher can open it with numpy and json alone): `arrays.npz` (`input_ids`, `attention_mask`,
`loss_mask`, `logp_b` `[N, T]`, `rewards` `[N]`), `problems.jsonl` (one problem per group, group-major),
`responses.jsonl` (one text per row) and `meta.json` (group size, counts). Written to a temporary directory and
renamed into place, so a set on disk is always complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from nsa_jax import tasks
from nsa_jax.rollouts.batch import Batch, homogeneous_groups
from nsa_jax.rollouts.collect import Rollout, collect

TOKEN_ARRAYS = ("input_ids", "attention_mask", "loss_mask", "logp_b")


@dataclasses.dataclass(frozen=True)
class OfflineSet:
    """A stored set: `batch` (per-token `TOKEN_ARRAYS`, per-row `rewards`), one problem per group, one response
    text per row, and `stats` (`prompts`, `dropped_all_right`, `dropped_all_wrong`, `kept`)."""

    batch: Batch
    problems: list[tasks.Problem]
    responses: list[str]
    stats: dict[str, int]

    @property
    def group_size(self) -> int:
        return self.batch.group_size

    def __len__(self) -> int:
        """Number of groups (prompts)."""
        return len(self.problems)

    def shard(self, index: int, count: int) -> OfflineSet:
        """Groups `index, index + count, ...`: this process's part on `count` hosts."""
        groups = np.arange(len(self))[index::count]
        rows = (groups[:, None] * self.group_size + np.arange(self.group_size)).reshape(-1)
        return OfflineSet(
            self.batch.select(rows),
            [self.problems[g] for g in groups],
            [self.responses[r] for r in rows],
            self.stats,
        )

    def save(self, directory: str) -> None:
        """Writes the set to `directory` (replacing one there) through a temporary sibling directory."""
        parent = os.path.dirname(os.path.abspath(directory))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".offline_", dir=parent)
        np.savez(os.path.join(tmp, "arrays.npz"), **self.batch.arrays())
        _write_lines(os.path.join(tmp, "problems.jsonl"), [dataclasses.asdict(p) for p in self.problems])
        _write_lines(os.path.join(tmp, "responses.jsonl"), [{"response": r} for r in self.responses])
        with open(os.path.join(tmp, "meta.json"), "w", encoding="utf-8") as f:
            json.dump({"group_size": self.group_size, **self.stats}, f, indent=2)
        if os.path.isdir(directory):
            shutil.rmtree(directory)
        os.replace(tmp, directory)

    @classmethod
    def load(cls, directory: str) -> OfflineSet:
        with open(os.path.join(directory, "meta.json"), encoding="utf-8") as f:
            meta = json.load(f)
        group_size = meta.pop("group_size")
        with np.load(os.path.join(directory, "arrays.npz")) as arrays:
            tokens = {k: arrays[k] for k in TOKEN_ARRAYS}
            rows = {"rewards": arrays["rewards"]}
        problems = [_problem(d) for d in _read_lines(os.path.join(directory, "problems.jsonl"))]
        responses = [d["response"] for d in _read_lines(os.path.join(directory, "responses.jsonl"))]
        return cls(Batch(tokens, rows, group_size), problems, responses, meta)


def from_rollouts(rollouts: Sequence[Rollout], problems: Sequence[tasks.Problem]) -> OfflineSet:
    """The mixed groups of `rollouts` (concatenated, group-major; `problems` one per group) as a set."""
    group_size = rollouts[0].group_size
    cat = {k: np.concatenate([getattr(r, k) for r in rollouts]) for k in ("input_ids", "attention_mask", "loss_mask")}
    cat["logp_b"] = np.concatenate([r.sampler_logp for r in rollouts])
    rewards = np.concatenate([r.rewards for r in rollouts])
    responses = [text for r in rollouts for text in r.responses]
    correct = rewards.reshape(-1, group_size) > 0.5
    keep_groups = ~homogeneous_groups(rewards, group_size)[::group_size]
    keep_rows = np.repeat(keep_groups, group_size)
    stats = {
        "prompts": len(problems),
        "dropped_all_right": int(correct.all(axis=1).sum()),
        "dropped_all_wrong": int((~correct.any(axis=1)).sum()),
        "kept": int(keep_groups.sum()),
    }
    batch = Batch({k: v[keep_rows] for k, v in cat.items()}, {"rewards": rewards[keep_rows]}, group_size)
    kept_problems = [p for p, keep in zip(problems, keep_groups, strict=True) if keep]
    return OfflineSet(batch, kept_problems, [t for t, keep in zip(responses, keep_rows, strict=True) if keep], stats)


def collect_offline(
    model: Any,
    tokenizer: Any,
    problems: Sequence[tasks.Problem],
    *,
    group_size: int,
    prompts_per_call: int,
    key: jax.Array,
    **collect_kwargs: Any,
) -> OfflineSet:
    """Samples `group_size` responses to every problem with the behaviour policy `model`, `prompts_per_call`
    prompts per sampler call (the last call padded with repeats of the first problem, dropped), scores them with
    `collect_kwargs["reward_fn"]`, and keeps the mixed groups. Call `i` uses `fold_in(key, i)`."""
    rollouts, used = [], []
    for i, start in enumerate(range(0, len(problems), prompts_per_call)):
        chunk = list(problems[start : start + prompts_per_call])
        padded = chunk + [chunk[0]] * (prompts_per_call - len(chunk))
        r = collect(model, tokenizer, padded, group_size=group_size, key=jax.random.fold_in(key, i), **collect_kwargs)
        rows = len(chunk) * group_size
        arrays = {k: getattr(r, k)[:rows] for k in ("input_ids", "attention_mask", "loss_mask", "sampler_logp")}
        rollouts.append(
            Rollout(
                **arrays,
                rewards=r.rewards[:rows],
                difficulty=r.difficulty[:rows],
                responses=r.responses[:rows],
                group_size=group_size,
            )
        )
        used += chunk
    return from_rollouts(rollouts, used)


def _write_lines(path: str, records: Sequence[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(record) + "\n" for record in records)


def _read_lines(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _problem(record: dict) -> tasks.Problem:
    return tasks.Problem(**{**record, "steps": tuple(record["steps"])})
