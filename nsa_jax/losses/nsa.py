"""BCPG with negative sample augmentation (BCPG-NSA, arXiv 2505.14403; ALGORITHMS.md section 3).

Offline: responses were generated once by a behaviour policy ``pi_b`` whose token log-probs are stored. Wrong
responses are split into steps and each step judged; tokens of steps the judges agree are correct ("mined") get the
weight ``beta`` instead of 1 in the negative policy-gradient term.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from nsa_jax.losses.advantages import all_wrong_fraction, group_advantages, is_correct, outcome_advantages
from nsa_jax.losses.policy import Metrics, policy_loss
from nsa_jax.losses.types import LossTerm, f32, lookup


def nsa_mined_mask(rewards: jax.Array, step_ids: jax.Array, step_correct: jax.Array) -> jax.Array:
    """``[B, T]`` bool: tokens of a wrong response that lie in a step judged correct.

    Args:
      rewards: ``[B]`` verifier outcomes in {0, 1}.
      step_ids: ``[B, T]`` int, the step index of each token, -1 outside the response.
      step_correct: ``[B, K]`` bool, the consensus label of each step (steps ``>= K`` count as not correct).
    """
    step_ids = jnp.asarray(step_ids)
    step_correct = jnp.asarray(step_correct, bool)
    k = step_correct.shape[1]
    in_range = (step_ids >= 0) & (step_ids < k)
    judged = jnp.take_along_axis(step_correct, jnp.clip(step_ids, 0, k - 1), axis=1)  # [B, T]
    return in_range & judged & ~is_correct(rewards)[:, None]


def nsa_token_weights(
    rewards: jax.Array, step_ids: jax.Array, step_correct: jax.Array, beta: float | jax.Array = 0.5
) -> jax.Array:
    """NSA token weights (arXiv 2505.14403, section 3.3, read through a secondary source), ``[B, T]`` float32.

    In a wrong response, tokens of consensus-correct steps get weight ``beta``, every other token 1; correct
    responses get 1 everywhere. ``beta`` in [-1, 1] (default 0.5): 1 is plain BCPG, 0 removes the penalty on the
    mined steps, below 0 rewards them. Arguments as in ``nsa_mined_mask``.
    """
    mined = nsa_mined_mask(rewards, step_ids, step_correct)
    return jnp.where(mined, f32(beta), 1.0)


BCPG_ADVANTAGES: dict[str, Callable[..., jax.Array]] = {
    "grpo": lambda r, g, ddof, e: group_advantages(r, g, kind="grpo", std_ddof=ddof, eps=e),
    "sign": lambda r, g, ddof, e: outcome_advantages(r, kind="sign"),
}


def bcpg_loss(
    logp: jax.Array,
    logp_old: jax.Array,
    rewards: jax.Array,
    mask: jax.Array,
    group_size: int,
    *,
    step_ids: jax.Array | None = None,
    step_correct: jax.Array | None = None,
    nsa_beta: float = 0.5,
    advantage: str = "grpo",
    std_ddof: int = 1,
    adv_eps: float = 1e-6,
    eps: float = 0.2,
    tau: float = 1e-3,
    agg: str = "token-mean",
    max_len: int | None = None,
) -> tuple[LossTerm, Metrics]:
    """Behaviour-constrained policy gradient, optionally with NSA token weights (arXiv 2505.14403).

    Our reading (ALGORITHMS.md section 3.4; the paper's exact form was not available): with ``logp_old`` the stored
    behaviour log-probs ``logp_b``, ``ratio = exp(logp - logp_b)``, token advantage ``w_t * A_i`` where ``A_i``
    comes from the outcome rewards of the ``group_size`` responses to the same prompt and ``w_t`` from
    ``nsa_token_weights`` (all 1 without step labels), per-token loss
    ``-min(ratio * w_t A_i, clip(ratio, 1 - eps, 1 + eps) * w_t A_i) + tau * k3(logp_b, logp)``, aggregated.

    Knobs: ``step_ids`` ``[B, T]`` / ``step_correct`` ``[B, K]`` (default None: plain BCPG), ``nsa_beta``
    (default 0.5; 1 is plain BCPG), ``advantage`` ``"grpo"`` (default) | ``"sign"`` (+1 / -1), ``std_ddof``
    (default 1) and ``adv_eps`` (default 1e-6) for ``"grpo"``, ``eps`` (default 0.2), ``tau`` (behaviour
    constraint, default 1e-3, the paper's value), ``agg`` (default ``"token-mean"``), ``max_len``.
    Extra metrics: ``all_wrong_frac``; ``nsa_mined_frac``, the fraction of wrong-response tokens that were mined
    (a ``LossTerm``: mined tokens over wrong-response tokens).
    """
    adv = lookup(BCPG_ADVANTAGES, advantage, "advantage")(rewards, group_size, std_ddof, adv_eps)  # [B]
    mask = f32(mask)
    if step_ids is None or step_correct is None:
        mined = jnp.zeros(mask.shape, bool)
    else:
        mined = nsa_mined_mask(rewards, step_ids, step_correct)
    token_adv = jnp.where(mined, f32(nsa_beta), 1.0) * adv[:, None]  # [B, T]
    term, metrics = policy_loss(
        logp,
        logp_old,
        token_adv,
        mask,
        eps_low=eps,
        eps_high=eps,
        agg=agg,
        logp_ref=logp_old,
        beta_kl=tau,
        kl_kind="k3",
        max_len=max_len,
    )
    wrong_tokens = mask * f32(~is_correct(rewards))[:, None]
    metrics = {
        **metrics,
        "all_wrong_frac": all_wrong_fraction(rewards, group_size),
        # A LossTerm, so micro-batches and devices combine it exactly (its denominator is not the token count).
        "nsa_mined_frac": LossTerm(jnp.sum(mined * mask), jnp.sum(wrong_tokens)),
    }
    return term, metrics
