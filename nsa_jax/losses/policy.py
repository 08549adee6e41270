"""The clipped policy-gradient surrogate and the outcome-reward losses built on it (ALGORITHMS.md section 1).

Every policy loss has the signature ``loss(logp, logp_old, rewards, mask, group_size, *, knobs)`` and returns
``(LossTerm, metrics)``; ``policy_loss`` is the shared core that takes advantages instead of rewards. Only ``logp``
is differentiated: ``logp_old`` and ``logp_ref`` are wrapped in ``stop_gradient``.
"""

import jax
import jax.numpy as jnp

from nsa_jax.losses.advantages import (
    all_wrong_fraction,
    group_advantages,
    grouped,
    is_correct,
    outcome_advantages,
)
from nsa_jax.losses.aggregation import aggregate
from nsa_jax.losses.kl import LOG_RATIO_CLAMP, kl
from nsa_jax.losses.types import LossTerm, f32, safe_div

Metrics = dict[str, jax.Array]


def _masked_stats(x: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Mean, std, min and max of ``x`` over ``mask``; all 0 when the mask is empty."""
    n = jnp.sum(mask)
    mean = safe_div(jnp.sum(x * mask), n)
    std = jnp.sqrt(safe_div(jnp.sum(jnp.square(x - mean) * mask), n))
    on = mask > 0
    empty = n == 0
    lo = jnp.where(empty, 0.0, jnp.min(jnp.where(on, x, jnp.inf)))
    hi = jnp.where(empty, 0.0, jnp.max(jnp.where(on, x, -jnp.inf)))
    return mean, std, lo, hi


def policy_loss(
    logp: jax.Array,
    logp_old: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    agg: str = "token-mean",
    logp_ref: jax.Array | None = None,
    beta_kl: float = 0.0,
    kl_kind: str = "k3",
    max_len: int | None = None,
) -> tuple[LossTerm, Metrics]:
    """Clipped importance-weighted policy gradient (PPO, Schulman et al. 2017, arXiv 1707.06347, eq. 7; GRPO,
    arXiv 2402.03300, eq. 3; asymmetric clip from DAPO, arXiv 2503.14476, eq. 10).

    Per token, with ``ratio = exp(clip(logp - logp_old, -20, 20))``:
    ``s = min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A)`` and the loss
    ``l = -(s - beta_kl * KL_kind(logp, logp_ref))``, aggregated with ``agg`` (see ``aggregate``).

    Args:
      logp: ``[B, T]`` log-probs of the sampled tokens under the policy being trained (the only gradient path).
      logp_old: ``[B, T]`` log-probs under the behaviour policy that generated the samples.
      advantages: ``[B]`` per response (broadcast over tokens) or ``[B, T]`` per token.
      mask: ``[B, T]`` 1 on response tokens.
      eps_low: lower clip range (default 0.2).
      eps_high: upper clip range (default 0.2; DAPO's clip-higher uses 0.28).
      agg: aggregation mode (default ``"token-mean"``).
      logp_ref: ``[B, T]`` frozen reference log-probs for the KL penalty; None for no penalty (default).
      beta_kl: KL coefficient (default 0.0).
      kl_kind: KL estimator ``"k1" | "k2" | "k3"`` (default ``"k3"``).
      max_len: ``L_max`` for ``"seq-mean-token-sum-norm"`` (default None: ``T``).

    Returns:
      ``(LossTerm, metrics)``; metrics (float32 scalars over response tokens): ``clip_frac_low`` /
      ``clip_frac_high`` (fraction of tokens where the lower / upper clip removes the gradient), ``ratio_min`` /
      ``ratio_mean`` / ``ratio_max``, ``adv_mean`` / ``adv_std``, ``kl_mean`` (0 without ``logp_ref``), ``tokens``.
    """
    mask = f32(mask)
    adv = f32(advantages)
    adv = adv[:, None] if adv.ndim == 1 else adv  # [B, 1] or [B, T]
    log_ratio = jnp.clip(f32(logp) - jax.lax.stop_gradient(f32(logp_old)), -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    ratio = jnp.exp(log_ratio)  # [B, T]
    surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv)
    per_token = -surrogate
    kl_tok = jnp.zeros_like(ratio)
    if logp_ref is not None:
        kl_tok = kl(logp, jax.lax.stop_gradient(f32(logp_ref)), kl_kind)
        per_token = per_token + beta_kl * kl_tok
    term = aggregate(per_token, mask, agg, max_len=max_len)

    adv_tok = jnp.broadcast_to(adv, ratio.shape)
    n = jnp.sum(mask)
    low = (ratio < 1.0 - eps_low) & (adv_tok < 0)
    high = (ratio > 1.0 + eps_high) & (adv_tok > 0)
    ratio = jax.lax.stop_gradient(ratio)
    ratio_mean, _, ratio_min, ratio_max = _masked_stats(ratio, mask)
    adv_mean, adv_std, _, _ = _masked_stats(adv_tok, mask)
    metrics = {
        "clip_frac_low": safe_div(jnp.sum(low * mask), n),
        "clip_frac_high": safe_div(jnp.sum(high * mask), n),
        "ratio_min": ratio_min,
        "ratio_mean": ratio_mean,
        "ratio_max": ratio_max,
        "adv_mean": adv_mean,
        "adv_std": adv_std,
        "kl_mean": safe_div(jnp.sum(jax.lax.stop_gradient(kl_tok) * mask), n),
        "tokens": n,
    }
    return term, metrics


def grpo_loss(
    logp: jax.Array,
    logp_old: jax.Array,
    rewards: jax.Array,
    mask: jax.Array,
    group_size: int,
    *,
    kind: str = "grpo",
    std_ddof: int = 1,
    adv_eps: float = 1e-6,
    **policy_kwargs,
) -> tuple[LossTerm, Metrics]:
    """GRPO (arXiv 2402.03300, eq. 3) and its advantage variants: ``-(s(A) - beta_kl * k3)`` aggregated, with
    ``A = group_advantages(rewards, group_size, kind=kind, std_ddof=std_ddof, eps=adv_eps)``.

    Knobs: ``kind`` ``"grpo" | "drgrpo" | "rloo" | "ngrpo"`` (default ``"grpo"``; Dr.GRPO, arXiv 2503.20783, pairs
    ``"drgrpo"`` with ``agg="seq-mean-token-sum-norm"``), ``std_ddof`` (default 1), ``adv_eps`` (default 1e-6);
    ``policy_kwargs`` go to ``policy_loss`` (``eps_low = eps_high = 0.2``, ``agg = "token-mean"``, ``logp_ref``,
    ``beta_kl = 0``, ``kl_kind = "k3"``, ``max_len``). The original GRPO aggregates with ``"seq-mean-token-mean"``.
    Extra metric: ``all_wrong_frac``, the fraction of groups with no correct answer (these get zero gradient).
    """
    adv = group_advantages(rewards, group_size, kind=kind, std_ddof=std_ddof, eps=adv_eps)
    term, metrics = policy_loss(logp, logp_old, adv, mask, **policy_kwargs)
    return term, {**metrics, "all_wrong_frac": all_wrong_fraction(rewards, group_size)}


def nsr_loss(
    logp: jax.Array,
    logp_old: jax.Array,
    rewards: jax.Array,
    mask: jax.Array,
    group_size: int,
    *,
    kind: str = "nsr",
    lam: float = 0.1,
    **policy_kwargs,
) -> tuple[LossTerm, Metrics]:
    """NSR / PSR / W-REINFORCE (Zhu et al. 2025, arXiv 2506.01347, section 3 and eq. 6): the clipped surrogate
    with a fixed advantage per outcome, ``"token-mean"`` aggregation and no KL by default.

    Knobs: ``kind`` ``"nsr"`` (0 / -1, default) | ``"psr"`` (+1 / 0) | ``"w-reinforce"`` (``lam`` / -1);
    ``lam`` (default 0.1); ``policy_kwargs`` go to ``policy_loss``. ``group_size`` only feeds the
    ``all_wrong_frac`` metric (the advantages use no group statistics).
    """
    adv = outcome_advantages(rewards, kind=kind, lam=lam)
    term, metrics = policy_loss(logp, logp_old, adv, mask, **policy_kwargs)
    return term, {**metrics, "all_wrong_frac": all_wrong_fraction(rewards, group_size)}


def ngrpo_loss(
    logp: jax.Array,
    logp_old: jax.Array,
    rewards: jax.Array,
    mask: jax.Array,
    group_size: int,
    *,
    std_ddof: int = 1,
    adv_eps: float = 1e-6,
    eps_low: float = 0.16,
    eps_high: float = 0.24,
    **policy_kwargs,
) -> tuple[LossTerm, Metrics]:
    """NGRPO (arXiv 2509.18851, official code): advantages from group statistics with one virtual reward 1
    appended (``group_advantages(kind="ngrpo")``), asymmetric clip, all-correct groups dropped.

    Dropped means removed from the batch: their tokens leave the mask, so they count in no denominator.
    Knobs: ``std_ddof`` (default 1), ``adv_eps`` (default 1e-6), ``eps_low`` (default 0.16), ``eps_high``
    (default 0.24); ``policy_kwargs`` go to ``policy_loss``.
    """
    adv = group_advantages(rewards, group_size, kind="ngrpo", std_ddof=std_ddof, eps=adv_eps)
    correct = grouped(is_correct(rewards), group_size)  # [Q, G]
    keep = ~(jnp.all(correct, axis=1, keepdims=True) & correct).reshape(-1)  # [B]: rows of all-correct groups off
    kept_mask = f32(mask) * keep[:, None]
    term, metrics = policy_loss(logp, logp_old, adv, kept_mask, eps_low=eps_low, eps_high=eps_high, **policy_kwargs)
    return term, {**metrics, "all_wrong_frac": all_wrong_fraction(rewards, group_size)}


def rft_loss(
    logp: jax.Array,
    logp_old: jax.Array,
    rewards: jax.Array,
    mask: jax.Array,
    group_size: int,
    *,
    agg: str = "token-mean",
    max_len: int | None = None,
) -> tuple[LossTerm, Metrics]:
    """Rejection-sampling fine-tuning (Yuan et al. 2023, arXiv 2308.01825, section 3.2): token NLL on the correct
    responses only, ``-sum(logp * mask over correct) / sum(mask over correct)``; wrong responses are discarded.

    Knobs: ``agg`` (default ``"token-mean"``), ``max_len``. ``logp_old`` is unused (kept for the common
    signature); ``group_size`` only feeds ``all_wrong_frac``. Metrics: ``tokens`` (kept tokens), ``kept_frac``
    (fraction of responses kept), ``all_wrong_frac``.
    """
    del logp_old
    keep = is_correct(rewards)  # [B]
    kept_mask = f32(mask) * keep[:, None]
    term = aggregate(-f32(logp), kept_mask, agg, max_len=max_len)
    metrics = {
        "tokens": jnp.sum(kept_mask),
        "kept_frac": jnp.mean(keep.astype(jnp.float32)),
        "all_wrong_frac": all_wrong_fraction(rewards, group_size),
    }
    return term, metrics
