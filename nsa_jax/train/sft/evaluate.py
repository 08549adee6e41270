"""Held-out greedy pass@1 of a policy on a built-in task, by difficulty: the number a demo run ends on."""

from __future__ import annotations

import json
import os

import jax
import ml_collections
from flax import nnx

from nsa_jax import eval as eval_lib
from nsa_jax import parallel, sampling, tasks
from nsa_jax.train.sft.data import Tokenizer, format_prompt


def greedy_answers(
    model: nnx.Module, tokenizer: Tokenizer, prompts: list[str], *, max_new_tokens: int, batch_size: int
) -> list[str]:
    """Greedy responses to `prompts`, `batch_size` at a time (the last batch padded, so one compilation)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    encoded = [tokenizer.encode(format_prompt(p), add_special_tokens=False) for p in prompts]
    texts: list[str] = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        padded = chunk + [chunk[0]] * (batch_size - len(chunk))
        out = sampling.generate(
            model, padded, max_new_tokens=max_new_tokens, key=jax.random.PRNGKey(0), greedy=True, pad_id=pad
        )
        tokens, lengths = parallel.to_host((out.tokens, out.lengths))
        texts += [tokenizer.decode(tokens[i, : lengths[i]], skip_special_tokens=True) for i in range(len(chunk))]
    return texts


def evaluate(model: nnx.Module, tokenizer: Tokenizer, config: ml_collections.ConfigDict) -> list[dict]:
    """Greedy pass@1 on `config.eval.num_problems` test-split problems of each `config.eval.difficulties` level of
    `config.data.task`; returns one row per level and writes them to `<workdir>/eval.json` (process 0)."""
    task = tasks.get_task(config.data.task)
    problems = [p for d in config.eval.difficulties for p in task.sample("test", config.eval.num_problems, 0, d)]
    responses = greedy_answers(
        model,
        tokenizer,
        [p.prompt for p in problems],
        max_new_tokens=config.eval.max_new_tokens,
        batch_size=config.eval.batch_size,
    )
    correct = tasks.verify_answers(responses, [p.answer for p in problems])
    by_level = eval_lib.accuracy_by_bucket(correct, [p.difficulty for p in problems])
    rows = [{"difficulty": d, "problems": n, "pass@1": acc} for d, (acc, n) in sorted(by_level.items())]
    if parallel.is_main_process():
        os.makedirs(config.workdir, exist_ok=True)
        with open(os.path.join(config.workdir, "eval.json"), "w", encoding="utf-8") as f:
            json.dump({"task": config.data.task, "rows": rows, "examples": responses[:3]}, f, indent=2)
    return rows


def format_table(rows: list[dict], task: str) -> str:
    """A small plain-text table of `evaluate`'s rows."""
    lines = [f"held-out greedy pass@1 on {task!r}", "difficulty  problems  pass@1"]
    lines += [f"{r['difficulty']:>10}  {r['problems']:>8}  {r['pass@1']:>6.3f}" for r in rows]
    return "\n".join(lines)
