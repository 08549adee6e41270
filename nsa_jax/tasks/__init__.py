"""nsa_jax.tasks: verifiable tasks, data sets and sandboxed answer verifiers (no JAX).

Built-in step-labelled tasks (``arith``, ``branch``) come from ``get_task(name)``; answers are scored with
``verify_answers`` (math-verify in a bounded worker pool with deadlines). The TFDS/grain data pipeline lives in
``nsa_jax.tasks.data`` and the reasoning-gym adapter in ``nsa_jax.tasks.gym``; they are imported lazily through this
package so importing ``nsa_jax.tasks`` stays cheap.
"""

from nsa_jax.tasks import arith as _arith  # noqa: F401 - registers "arith"
from nsa_jax.tasks import branch as _branch  # noqa: F401 - registers "branch"
from nsa_jax.tasks.answers import extract_answer, format_reward, normalize_answer
from nsa_jax.tasks.arith import ArithTask
from nsa_jax.tasks.base import Problem, StepCheck, Task, get_task, register_task, split_of, task_names
from nsa_jax.tasks.branch import BranchTask
from nsa_jax.tasks.generated import GeneratedTask
from nsa_jax.tasks.verify import (
    VerifyStats,
    get_verifier_pool,
    reset_verifier_stats,
    shutdown_verifier_pool,
    verifier_stats,
    verify_answer,
    verify_answers,
)

__all__ = [
    "ArithTask",
    "BranchTask",
    "GeneratedTask",
    "Problem",
    "StepCheck",
    "Task",
    "VerifyStats",
    "extract_answer",
    "format_reward",
    "get_task",
    "get_verifier_pool",
    "normalize_answer",
    "register_task",
    "reset_verifier_stats",
    "shutdown_verifier_pool",
    "split_of",
    "task_names",
    "verifier_stats",
    "verify_answer",
    "verify_answers",
]
