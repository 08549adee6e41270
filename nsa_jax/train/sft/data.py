"""Supervised (prompt, response) data: sources, tokenisation into fixed-length rows, and a resumable batcher.

The batcher is a pure function of `(seed, position)`: batch `i` is a slice of a seeded permutation of the rows (a
new permutation each epoch), so the only data state a checkpoint needs is the position, and a resumed run reads
exactly the batches an uninterrupted run would have read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from nsa_jax import tasks
from nsa_jax.models import encode_rows
from nsa_jax.train.core.engine import Round


class DataError(ValueError):
    """Unreadable or malformed training data; the message names the file and line."""


class Tokenizer(Protocol):
    eos_token_id: int | None
    pad_token_id: int | None

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...


def format_prompt(prompt: str) -> str:
    """The text the model sees before its response (shared by SFT, evaluation and sampling): the prompt and a
    newline, no instruction (`tasks.plain_prompt(prompt, style=None)`)."""
    return tasks.plain_prompt(prompt, style=None)


def task_pairs(
    task_name: str, n: int, *, seed: int, difficulty: int | None, stop_early: float = 0.0
) -> list[tuple[str, str]]:
    """`n` training problems of a built-in task as (prompt, canonical solution) pairs.

    `stop_early` is the share of demonstrations (a subset fixed by `seed`) that stop one step short: the last step
    is left out and the answer line gives the value the step before reached, as a model answers a sub-question
    (`stopped_early`). The model then learns two procedures, and RL has something to learn that carries over from
    the prompts it sees to every other one: finish the chain (the miniature's regime, `configs/sft_tiny.py`).
    """
    problems = tasks.get_task(task_name).sample("train", n, seed, difficulty)
    short = np.random.default_rng([seed, 0xE5]).random(len(problems)) < stop_early
    return [(p.prompt, stopped_early(p) if cut else p.solution) for p, cut in zip(problems, short)]


def stopped_early(problem: tasks.Problem) -> str:
    """`problem`'s solution without its last step, answering the value of the step before (`steps` end in
    `= value`); the full solution when there is a single step."""
    if len(problem.steps) < 2:
        return problem.solution
    kept = problem.steps[:-1]
    return "\n".join([*kept, f"#### {kept[-1].rsplit('=', 1)[-1].strip()}"])


def jsonl_records(path: str, fields: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The string `fields` of every line of a JSONL file, as tuples; a missing file, a bad line or a non-string
    field is a DataError naming the file (and line)."""
    if not os.path.isfile(path):
        raise DataError(f"data file {path!r} does not exist or is not a file")
    records = []
    names = ", ".join(repr(f) for f in fields)
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    values = tuple(record[name] for name in fields)
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise DataError(f"{path}:{number}: expected a JSON object with {names} ({e})") from e
                if not all(isinstance(v, str) for v in values):
                    raise DataError(f"{path}:{number}: {names} must be strings")
                records.append(values)
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read data file {path!r}: {e}") from e
    if not records:
        raise DataError(f"data file {path!r} holds no examples")
    return records


def jsonl_pairs(path: str) -> list[tuple[str, str]]:
    """(prompt, response) pairs from a JSONL file whose lines hold string fields `prompt` and `response`."""
    return jsonl_records(path, ("prompt", "response"))


@dataclass(frozen=True)
class Rows:
    """Tokenised examples, right-padded: input_ids [N, T] int32, attention_mask [N, T] int32, loss_mask [N, T] f32
    (1 on response tokens, the ones the model is trained to predict)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    loss_mask: np.ndarray

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def take(self, index: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "input_ids": self.input_ids[index],
            "attention_mask": self.attention_mask[index],
            "loss_mask": self.loss_mask[index],
        }


def tokenize(pairs: Sequence[tuple[str, str]], tokenizer: Tokenizer, seq_len: int) -> Rows:
    """`format_prompt(prompt)` then `response` + EOS, one example per row, right-padded to `seq_len`.

    An example longer than `seq_len` is an error naming it (silently truncating would train on cut answers).
    """
    prompts = [format_prompt(prompt) for prompt, _ in pairs]
    ids, attention, starts = encode_rows(
        tokenizer, prompts, [r for _, r in pairs], seq_len, limit=f"data.seq_len={seq_len}", error=DataError
    )
    loss = (attention * (np.arange(seq_len)[None] >= starts[:, None])).astype(np.float32)
    return Rows(ids, attention, loss)


class Batcher:
    """Batch `position` = rows `[k*B, (k+1)*B)` of the permutation of epoch `position // steps_per_epoch`.

    The permutation is seeded by `(seed, epoch)`; a final partial batch of an epoch is dropped, so every batch has
    the same shape (one compilation). A `loop.Source` whose round `position` is batch `position`.
    """

    def __init__(self, rows: Rows, batch_size: int, seed: int):
        if len(rows) < batch_size:
            raise DataError(f"{len(rows)} examples are fewer than one batch of batch_size={batch_size}")
        self.rows = rows
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_epoch = len(rows) // batch_size

    def batch(self, position: int) -> dict[str, np.ndarray]:
        epoch, k = divmod(position, self.steps_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))
        return self.rows.take(order[k * self.batch_size : (k + 1) * self.batch_size])

    def round(self, position: int, engine: Any = None) -> Round:
        return Round([self.batch(position)])

    def data_state(self, position: int) -> dict[str, Any]:
        """What a checkpoint stores about the data: enough to check a resume reads the same stream."""
        return {"position": position, "seed": self.seed, "rows": len(self.rows), "batch_size": self.batch_size}
