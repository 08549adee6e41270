"""BCPG with negative sample augmentation (BCPG-NSA, arXiv 2505.14403; ALGORITHMS.md section 3).

Offline: responses were generated once by a behaviour policy ``pi_b`` whose token log-probs are stored. Wrong
responses are split into steps and each step judged; tokens of steps the judges agree are correct ("mined") get the
weight ``beta`` instead of 1 in the negative policy-gradient term. The paper's GRPO-offline baseline is
``grpo_loss`` with ``logp_old`` the stored behaviour log-probs (ratio and clip against ``pi_b``).
"""

import jax
import jax.numpy as jnp

from nsa_jax.losses.advantages import all_wrong_fraction, group_advantages, is_correct
from nsa_jax.losses.policy import Metrics
from nsa_jax.losses.types import LossTerm, f32, safe_div


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


def bcpg_loss(
    logp: jax.Array,
    logp_b: jax.Array,
    rewards: jax.Array,
    mask: jax.Array,
    group_size: int,
    *,
    step_ids: jax.Array | None = None,
    step_correct: jax.Array | None = None,
    nsa_beta: float = 0.5,
    tau: float = 1e-3,
) -> tuple[LossTerm, Metrics]:
    """Behaviour-constrained policy gradient, with NSA token weights (arXiv 2505.14403, its Eq. 6).

    [secondary] The paper's objective as quoted from its arXiv v4 by a third-party excerpt (ALGORITHMS.md 3.4; the
    mirror-descent surrogate of Kimi k1.5, arXiv 2501.12599 section 2.3.2), maximised:
    ``J = (1/G) sum_i (1/|y_i|) [sum_t w_t (r_i - mean_g r) logp_t - (tau/2) (sum_t (logp_t - logp_b,t))^2]``.
    No importance ratio and no clipping: the policy term is ``logp`` itself, and the behaviour constraint is the
    squared *sequence* log-ratio to the policy that generated the data (``logp_b``, its stored log-probs), inside
    the ``1/|y_i|``. The advantage is the group mean-centred reward (Dr.GRPO's, no std). ``w_t`` are the NSA
    weights (``nsa_token_weights``, [secondary]): ``nsa_beta`` on tokens of consensus-correct steps of wrong
    responses, 1 elsewhere; without step labels (or ``nsa_beta = 1``) this is plain BCPG.

    As a LossTerm: ``v_i = [sum_t m w A_i logp - tau/2 (sum_t m (logp - logp_b))^2] / sum_t m``, total
    ``sum_i -v_i`` over rows with at least one response token, denominator their number; so micro-batches and
    devices sum exactly. Knobs: ``step_ids`` ``[B, T]`` / ``step_correct`` ``[B, K]`` (default None),
    ``nsa_beta`` in [-1, 1] (default 0.5), ``tau`` (default 1e-3, the paper's value).
    Metrics: ``tokens``, ``adv_mean``, ``seq_log_ratio_sq`` (mean squared sequence log-ratio to the behaviour
    policy, a LossTerm), ``all_wrong_frac``, ``nsa_mined_frac`` (mined over wrong-response tokens, a LossTerm).
    """
    if isinstance(nsa_beta, (int, float)) and not -1.0 <= nsa_beta <= 1.0:
        raise ValueError(f"nsa_beta={nsa_beta!r} is outside [-1, 1]")
    mask, logp, logp_b = f32(mask), f32(logp), f32(logp_b)
    adv = group_advantages(rewards, group_size, kind="drgrpo")  # [B] r_i - mean_g r
    if step_ids is None or step_correct is None:
        mined = jnp.zeros(mask.shape, bool)
    else:
        mined = nsa_mined_mask(rewards, step_ids, step_correct)
    weights = jnp.where(mined, f32(nsa_beta), 1.0)  # [B, T]
    lengths = jnp.sum(mask, axis=1)  # [B]
    policy = jnp.sum(mask * weights * adv[:, None] * logp, axis=1)  # [B]
    log_ratio = jnp.sum(mask * (logp - jax.lax.stop_gradient(logp_b)), axis=1)  # [B]
    per_row = safe_div(policy - 0.5 * f32(tau) * log_ratio**2, lengths)  # v_i
    rows = f32(lengths > 0)
    term = LossTerm(-jnp.sum(per_row * rows), jnp.sum(rows))
    wrong_tokens = mask * f32(~is_correct(rewards))[:, None]
    metrics = {
        "tokens": jnp.sum(mask),
        "adv_mean": safe_div(jnp.sum(adv * rows), jnp.sum(rows)),
        "seq_log_ratio_sq": LossTerm(jnp.sum(jax.lax.stop_gradient(log_ratio) ** 2 * rows), jnp.sum(rows)),
        "all_wrong_frac": all_wrong_fraction(rewards, group_size),
        # A LossTerm, so micro-batches and devices combine it exactly (its denominator is not the token count).
        "nsa_mined_frac": LossTerm(jnp.sum(mined * mask), jnp.sum(wrong_tokens)),
    }
    return term, metrics
