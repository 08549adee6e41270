"""nsa_jax.tasks: verifiable tasks, data sets and sandboxed answer verifiers (no JAX).

Built-in step-labelled tasks (``arith``, ``branch``) and local-file tasks (``gsm8k``, ``math``) come from
``get_task(name, **kwargs)``; answers are scored with ``verify_answers`` (math-verify in a bounded worker pool
with deadlines); ``get_task("gym", dataset=...)`` adapts reasoning-gym. The TFDS/grain names (``make_dataset``,
``jsonl_data_source``, ...) are loaded on first access, so importing ``nsa_jax.tasks`` stays cheap (no TFDS, grain or sympy).
"""

import importlib
from typing import Any

from nsa_jax.tasks import arith as _arith  # noqa: F401 - registers "arith"
from nsa_jax.tasks import branch as _branch  # noqa: F401 - registers "branch"
from nsa_jax.tasks import files as _files  # noqa: F401 - registers "gsm8k" and "math"
from nsa_jax.tasks import gym as _gym  # noqa: F401 - registers "gym" (reasoning-gym is imported only when used)
from nsa_jax.tasks.answers import extract_answer, format_reward, normalize_answer
from nsa_jax.tasks.arith import ArithTask
from nsa_jax.tasks.base import Problem, StepCheck, Task, get_task, register_task, split_of, task_names
from nsa_jax.tasks.branch import BranchTask
from nsa_jax.tasks.files import FileTask
from nsa_jax.tasks.generated import GeneratedTask
from nsa_jax.tasks.gym import GymTask
from nsa_jax.tasks.jsonl import JsonlStats, MalformedLineError, read_jsonl
from nsa_jax.tasks.prompts import answer_instruction, chat_prompt, plain_prompt
from nsa_jax.tasks.verify import (
    VerifyStats,
    get_verifier_pool,
    reset_verifier_stats,
    shutdown_verifier_pool,
    verifier_stats,
    verify_answer,
    verify_answers,
)

_LAZY = {
    "make_dataset": "nsa_jax.tasks.data",
    "process_shard": "nsa_jax.tasks.data",
    "jsonl_data_source": "nsa_jax.tasks.tfds_jsonl",
    "malformed_counts": "nsa_jax.tasks.tfds_jsonl",
    "record_to_problem": "nsa_jax.tasks.tfds_jsonl",
    "Gsm8kJsonl": "nsa_jax.tasks.tfds_jsonl",
    "MathJsonl": "nsa_jax.tasks.tfds_jsonl",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nsa_jax.tasks' has no attribute {name!r}")


__all__ = [
    "ArithTask",
    "BranchTask",
    "FileTask",
    "GeneratedTask",
    "Gsm8kJsonl",
    "GymTask",
    "JsonlStats",
    "MalformedLineError",
    "MathJsonl",
    "Problem",
    "StepCheck",
    "Task",
    "VerifyStats",
    "answer_instruction",
    "chat_prompt",
    "extract_answer",
    "format_reward",
    "get_task",
    "get_verifier_pool",
    "jsonl_data_source",
    "make_dataset",
    "malformed_counts",
    "normalize_answer",
    "plain_prompt",
    "process_shard",
    "read_jsonl",
    "record_to_problem",
    "register_task",
    "reset_verifier_stats",
    "shutdown_verifier_pool",
    "split_of",
    "task_names",
    "verifier_stats",
    "verify_answer",
    "verify_answers",
]
