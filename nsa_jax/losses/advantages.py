"""Per-response advantages from outcome rewards (ALGORITHMS.md section 1).

Batches are group-major and contiguous: ``B = Q * G`` and rows ``q*G .. q*G+G-1`` are the ``G`` responses to
prompt ``q``. Every function here is a pure function of the rewards and returns ``[B]`` float32; nothing here is
differentiated (rewards carry no gradient).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from nsa_jax.losses.types import f32, lookup


def grouped(x: jax.Array, group_size: int) -> jax.Array:
    """``[B, ...] -> [Q, G, ...]``; raises ValueError when ``B`` is not a multiple of ``group_size``."""
    if group_size < 1 or x.shape[0] % group_size:
        raise ValueError(f"group_size={group_size} does not divide the batch of {x.shape[0]} responses")
    return x.reshape(x.shape[0] // group_size, group_size, *x.shape[1:])


def is_correct(rewards: jax.Array) -> jax.Array:
    """Verifier outcome of each response: rewards are in {0, 1}; anything above 0.5 counts as correct."""
    return f32(rewards) > 0.5


def all_wrong_fraction(rewards: jax.Array, group_size: int) -> jax.Array:
    """Fraction of groups in which no response is correct (the groups GRPO learns nothing from)."""
    none_correct = ~jnp.any(grouped(is_correct(rewards), group_size), axis=1)  # [Q]
    return jnp.mean(none_correct.astype(jnp.float32))


def centred(r: jax.Array) -> jax.Array:
    """``r - mean_g r`` over the last axis of ``r [Q, G]``, exactly 0 on a group of equal rewards.

    Under ``jit`` XLA may compute a mean of equal values off by one ulp; divided by a zero std plus ``eps`` that
    would give a homogeneous group an advantage of order 0.1 instead of 0.
    """
    # max == min rather than comparing with column 0: a one-column slice of a group axis sharded over an Explicit
    # mesh axis is not defined.
    same = jnp.max(r, axis=-1, keepdims=True) == jnp.min(r, axis=-1, keepdims=True)
    return jnp.where(same, 0.0, r - jnp.mean(r, axis=-1, keepdims=True))


def _std(c: jax.Array, std_ddof: int) -> jax.Array:
    """Standard deviation from already centred values ``c [Q, G]`` (so exactly 0 for a homogeneous group)."""
    return jnp.sqrt(jnp.sum(jnp.square(c), axis=-1, keepdims=True) / (c.shape[-1] - std_ddof))


def normalise(r: jax.Array, std_ddof: int, eps: float) -> jax.Array:
    """GRPO group normalisation ``(r - mean_g r) / (std_g r + eps)`` over the last axis of ``r [Q, G]``.

    A group too small for the requested ``std_ddof`` (``G <= std_ddof``, e.g. ``G = 1``) gets advantage 0.
    """
    if r.shape[-1] <= std_ddof:
        return jnp.zeros_like(r)
    c = centred(r)
    return c / (_std(c, std_ddof) + eps)


def _grpo(r: jax.Array, std_ddof: int, eps: float) -> jax.Array:
    return normalise(r, std_ddof, eps)


def _drgrpo(r: jax.Array, std_ddof: int, eps: float) -> jax.Array:
    del std_ddof, eps  # Dr.GRPO removes the std division.
    return centred(r)


def _rloo(r: jax.Array, std_ddof: int, eps: float) -> jax.Array:
    del std_ddof, eps
    g = r.shape[-1]
    if g == 1:
        return jnp.zeros_like(r)
    # r_i - mean_{j != i} r_j == G/(G-1) * (r_i - mean_g r)
    return centred(r) * (g / (g - 1))


def _ngrpo(r: jax.Array, std_ddof: int, eps: float) -> jax.Array:
    """GRPO statistics over the group plus one virtual reward-1 answer, written with reductions only (no concatenate
    and slice, which an Explicit mesh does not define on a sharded group axis)."""
    g = r.shape[-1]
    mean = (jnp.sum(r, axis=-1, keepdims=True) + 1.0) / (g + 1)  # [Q, 1] over the G+1 answers
    all_correct = jnp.min(r, axis=-1, keepdims=True) == 1.0  # the G+1 answers are equal: exactly 0, as `centred`
    c = jnp.where(all_correct, 0.0, r - mean)  # [Q, G]
    c_virtual = jnp.where(all_correct, 0.0, 1.0 - mean)  # [Q, 1]
    var = (jnp.sum(jnp.square(c), axis=-1, keepdims=True) + jnp.square(c_virtual)) / (g + 1 - std_ddof)
    return c / (jnp.sqrt(var) + eps)


GROUP_ADVANTAGES: dict[str, Callable[[jax.Array, int, float], jax.Array]] = {
    "grpo": _grpo,
    "drgrpo": _drgrpo,
    "rloo": _rloo,
    "ngrpo": _ngrpo,
}


def group_advantages(
    rewards: jax.Array, group_size: int, *, kind: str = "grpo", std_ddof: int = 1, eps: float = 1e-6
) -> jax.Array:
    """Group-relative advantage of each response, ``[B] -> [B]`` float32.

    Kinds (``kind``, default ``"grpo"``):

    - ``"grpo"`` (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300, eq. 3 / section 4.1.2):
      ``A_i = (r_i - mean_g r) / (std_g r + eps)``. A group of size 1, or any group with equal rewards, gets 0.
    - ``"drgrpo"`` (Liu et al. 2025, Understanding R1-Zero-Like Training, arXiv 2503.20783, section 3.2,
      official code): ``A_i = r_i - mean_g r`` (no std); pair with aggregation ``"seq-mean-token-sum-norm"``.
    - ``"rloo"`` (Ahmadian et al. 2024, arXiv 2402.14740, eq. 8): ``A_i = r_i - mean_{j != i} r_j``
      (0 for a group of size 1).
    - ``"ngrpo"`` (NGRPO, arXiv 2509.18851, official code): mean and std of the group with one virtual reward 1
      appended, ``A_i = (r_i - mu') / (sigma' + eps)``. All-correct groups get 0; all-wrong groups get a negative
      advantage instead of 0.

    Args:
      rewards: ``[B]`` outcome rewards, group-major with contiguous groups.
      group_size: ``G``, responses per prompt; must divide ``B``.
      kind: one of ``GROUP_ADVANTAGES``; ValueError otherwise.
      std_ddof: delta degrees of freedom of the std (default 1, unbiased, as the reference implementations).
      eps: added to the std (default 1e-6).
    """
    fn = lookup(GROUP_ADVANTAGES, kind, "kind")
    r = grouped(f32(rewards), group_size)  # [Q, G]
    return fn(r, std_ddof, eps).reshape(-1)


OUTCOME_ADVANTAGES: dict[str, Callable[[float], tuple[float, float]]] = {
    "psr": lambda lam: (1.0, 0.0),
    "nsr": lambda lam: (0.0, -1.0),
    "w-reinforce": lambda lam: (lam, -1.0),
    "sign": lambda lam: (1.0, -1.0),
}


def outcome_advantages(rewards: jax.Array, *, kind: str = "nsr", lam: float = 0.1) -> jax.Array:
    """Fixed per-response advantage from the outcome alone (no group statistics), ``[B] -> [B]`` float32.

    From Zhu et al. 2025, The Surprising Effectiveness of Negative Reinforcement in LLM Reasoning
    (arXiv 2506.01347, section 3 and eq. 6), and the ``"sign"`` option of BCPG (ALGORITHMS.md section 3):

    - ``"psr"``: correct ``+1``, wrong ``0`` (positive sample reinforcement).
    - ``"nsr"``: correct ``0``, wrong ``-1`` (negative sample reinforcement).
    - ``"w-reinforce"``: correct ``lam``, wrong ``-1`` (weighted REINFORCE, the paper's recommended mix).
    - ``"sign"``: correct ``+1``, wrong ``-1`` (BCPG's sign advantage).

    Args:
      rewards: ``[B]`` verifier outcomes in {0, 1}.
      kind: one of ``OUTCOME_ADVANTAGES`` (default ``"nsr"``); ValueError otherwise.
      lam: W-REINFORCE weight of positive samples (default 0.1, the paper's choice).
    """
    pos, neg = lookup(OUTCOME_ADVANTAGES, kind, "kind")(lam)
    return jnp.where(is_correct(rewards), jnp.float32(pos), jnp.float32(neg))
