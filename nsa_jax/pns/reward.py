"""PNS's composite reward for the negative generator (arXiv 2602.03516; ALGORITHMS.md section 4).

[our reading] The paper names the four components (format, answer invalidity, reward-model score, chain-of-thought
quality) but not their form, weights or gate; this is the project's definition, implemented exactly as written
there. Trained by "reverse RL" ([secondary]) on it, the generator learns answers that look right, reason well and
end wrong: the plausible negatives of preference learning.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from nsa_jax import tasks
from nsa_jax.tasks.answers import as_number


def composite_reward(
    format_ok: jax.Array,
    correct: jax.Array,
    rm_score: jax.Array,
    cot_score: jax.Array,
    *,
    w_fmt: float = 0.2,
    w_inv: float = 0.4,
    w_rm: float = 0.2,
    w_cot: float = 0.2,
) -> jax.Array:
    """[B] float32 reward of each response: `0` when the format check fails; exactly `w_fmt` when the answer is
    correct; otherwise `w_fmt + w_inv + w_rm * sigmoid(rm_score) + w_cot * cot_score`.

    format_ok, correct: [B] bool (or {0, 1}); rm_score: [B] reward-model logits; cot_score: [B] in [0, 1], the share
    of the response's steps the step judges call correct. So a well-formed, wrong, coherent answer the reward model
    likes scores highest (up to 1 with the default weights), a correct one `w_fmt`, a malformed one 0.
    """
    fmt, right = (jnp.asarray(x, jnp.float32) > 0.5 for x in (format_ok, correct))
    wrong = w_fmt + w_inv + w_rm * jax.nn.sigmoid(jnp.asarray(rm_score, jnp.float32))
    wrong = wrong + w_cot * jnp.asarray(cot_score, jnp.float32)
    return jnp.where(fmt, jnp.where(right, jnp.float32(w_fmt), wrong), 0.0).astype(jnp.float32)


def format_ok(response: str, *, style: str = "hash") -> bool:
    """The format gate: at least one reasoning line before a final answer that parses in `style` ("hash": a last
    line `#### x` with a number x, the built-in tasks and GSM8K; "boxed": a closed `\\boxed{}`, MATH)."""
    lines = [line for line in response.splitlines() if line.strip()]
    if style == "hash":
        answer = tasks.extract_answer(response) if tasks.format_reward(response, style="hash") > 0 else None
        return len(lines) >= 2 and answer is not None and as_number(answer) is not None
    return len(lines) >= 1 and tasks.format_reward(response, style=style) > 0


def cot_score(step_correct: Sequence[bool]) -> float:
    """The share of a response's steps judged correct (0 for a response without steps)."""
    return float(sum(bool(x) for x in step_correct) / len(step_correct)) if len(step_correct) else 0.0
