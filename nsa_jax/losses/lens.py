"""LENS: likelihood estimation with negative samples (arXiv 2510.08696; ALGORITHMS.md section 2).

GRPO gives a group of only wrong answers zero gradient. LENS gives each wrong answer a negative reward whose size
grows with the confidence the behaviour policy had in it, normalised by a per-group difficulty ``D``. Everything
here is computed from ``logp_old`` and the rewards: no gradient flows through the advantages.
"""

import jax
import jax.numpy as jnp

from nsa_jax.losses.advantages import all_wrong_fraction, centred, grouped, is_correct, normalise
from nsa_jax.losses.policy import Metrics, policy_loss
from nsa_jax.losses.types import LossTerm, f32, safe_div


def lens_weight(z: jax.Array) -> jax.Array:
    """The weight function of the LENS theory, ``w(z) = log(1 / (1 - z)) / z - 1`` for ``z`` in (0, 1);
    ``w(0.5) = 0.386294``. It is increasing and tends to 0 as ``z -> 0`` (for documentation and property tests;
    the practical algorithm uses ``lens_rewards``)."""
    z = f32(z)
    return -jnp.log1p(-z) / z - 1.0


def lens_rewards(
    rewards: jax.Array,
    logp_old: jax.Array,
    mask: jax.Array,
    group_size: int,
    *,
    dimp_uses_pbar: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """Confidence-calibrated rewards of LENS (arXiv 2510.08696, practical algorithm), ``[B] -> ([B], [B])``.

    1. ``pbar_i = exp(sum_t(logp_old * mask)_i / sum_t(mask)_i)``, the length-normalised probability (1 for a
       response without tokens).
    2. ``D`` per group: with at least one correct answer ``D = max(1 / mean_g(r_i / pbar_i), 2 * max_g pbar)``;
       all wrong ``D = 2 * max_g pbar``.
    3. ``rt_i = r_i - (1 - r_i) * (1 / G) * pbar_i / (D - pbar_i)``, in [-1, 1] (0 if ``D = pbar_i = 0``).

    Our reading (ALGORITHMS.md section 2): the paper substitutes ``pbar`` for the sequence probability but does not
    say whether ``D_imp`` does too. ``dimp_uses_pbar=True`` (default) uses ``pbar`` in ``D_imp``; False uses the
    raw sequence probability ``exp(sum_t logp_old * mask)``. ``D_imp`` is computed in log space, so it stays finite
    when probabilities underflow.

    Returns:
      ``(rt [B], D [B])``: the calibrated reward of each response and its group's ``D`` repeated per response.
    """
    mask = f32(mask)
    seq_logp = jnp.sum(jax.lax.stop_gradient(f32(logp_old)) * mask, axis=-1)  # [B]
    log_pbar = safe_div(seq_logp, jnp.sum(mask, axis=-1))  # [B]
    correct = grouped(is_correct(rewards), group_size)  # [Q, G]
    r = grouped(f32(rewards), group_size)
    pbar = grouped(jnp.exp(log_pbar), group_size)
    log_p_imp = grouped(log_pbar if dimp_uses_pbar else seq_logp, group_size)
    # log D_imp = log G - logsumexp over correct answers of (-log p_i), i.e. 1 / mean_g(r_i / p_i) for r in {0, 1}.
    log_inv_sum = jax.nn.logsumexp(jnp.where(correct, -log_p_imp, -jnp.inf), axis=1, keepdims=True)  # [Q, 1]
    any_correct = jnp.any(correct, axis=1, keepdims=True)
    d_imp = jnp.where(any_correct, jnp.exp(jnp.log(group_size) - jnp.where(any_correct, log_inv_sum, 0.0)), 0.0)
    d = jnp.maximum(d_imp, 2.0 * jnp.max(pbar, axis=1, keepdims=True))  # [Q, 1]
    penalty = safe_div(pbar, d - pbar) / group_size
    rt = jnp.where(correct, r, r - (1.0 - r) * penalty)
    return rt.reshape(-1), jnp.broadcast_to(d, r.shape).reshape(-1)


def lens_advantages(
    rewards: jax.Array,
    logp_old: jax.Array,
    mask: jax.Array,
    group_size: int,
    *,
    alpha: float = 0.25,
    std_ddof: int = 1,
    dimp_uses_pbar: bool = True,
    eps: float = 1e-6,
) -> jax.Array:
    """LENS advantages from the calibrated rewards ``rt = lens_rewards(...)``, ``[B]`` float32.

    Mixed groups: GRPO normalisation ``(rt - mean_g rt) / (std_g rt + eps)``; all-wrong groups: de-mean only,
    ``alpha * (rt - mean_g rt)``; all-correct groups: 0 (arXiv 2510.08696, practical algorithm).

    Knobs: ``alpha`` (default 0.25), ``std_ddof`` (default 1), ``dimp_uses_pbar`` (default True, our reading, see
    ``lens_rewards``), ``eps`` (default 1e-6).
    """
    rt, _ = lens_rewards(rewards, logp_old, mask, group_size, dimp_uses_pbar=dimp_uses_pbar)
    return _advantages_from_calibrated(rt, rewards, group_size, alpha, std_ddof, eps)


def _advantages_from_calibrated(
    rt: jax.Array, rewards: jax.Array, group_size: int, alpha: float, std_ddof: int, eps: float
) -> jax.Array:
    rt = grouped(rt, group_size)  # [Q, G]
    correct = grouped(is_correct(rewards), group_size)
    any_correct = jnp.any(correct, axis=1, keepdims=True)
    all_correct = jnp.all(correct, axis=1, keepdims=True)
    mixed = normalise(rt, std_ddof, eps)
    all_wrong = alpha * centred(rt)
    adv = jnp.where(all_correct, 0.0, jnp.where(any_correct, mixed, all_wrong))
    return adv.reshape(-1)


def lens_loss(
    logp: jax.Array,
    logp_old: jax.Array,
    rewards: jax.Array,
    mask: jax.Array,
    group_size: int,
    *,
    alpha: float = 0.25,
    std_ddof: int = 1,
    dimp_uses_pbar: bool = True,
    adv_eps: float = 1e-6,
    **policy_kwargs,
) -> tuple[LossTerm, Metrics]:
    """LENS loss (arXiv 2510.08696): the GRPO clipped surrogate on ``lens_advantages``; the paper uses no KL,
    ``eps = 0.2`` and ``G = 16``.

    Knobs: ``alpha`` (default 0.25), ``std_ddof`` (default 1), ``dimp_uses_pbar`` (default True, our reading),
    ``adv_eps`` (default 1e-6); ``policy_kwargs`` go to ``policy_loss``. Extra metrics: ``all_wrong_frac``,
    ``lens_d_mean`` / ``lens_d_min`` / ``lens_d_max`` (the difficulty normaliser over responses) and
    ``lens_neg_reward_mean`` (mean calibrated reward of wrong answers).
    """
    rt, d = lens_rewards(rewards, logp_old, mask, group_size, dimp_uses_pbar=dimp_uses_pbar)
    adv = _advantages_from_calibrated(rt, rewards, group_size, alpha, std_ddof, adv_eps)
    term, metrics = policy_loss(logp, logp_old, adv, mask, **policy_kwargs)
    wrong = f32(~is_correct(rewards))
    metrics = {
        **metrics,
        "all_wrong_frac": all_wrong_fraction(rewards, group_size),
        "lens_d_mean": jnp.mean(d),
        "lens_d_min": jnp.min(d),
        "lens_d_max": jnp.max(d),
        "lens_neg_reward_mean": safe_div(jnp.sum(rt * wrong), jnp.sum(wrong)),
    }
    return term, metrics
