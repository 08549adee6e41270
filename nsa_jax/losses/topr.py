"""TOPR, tapered off-policy REINFORCE (Le Roux et al., arXiv 2503.14286; ALGORITHMS.md section 1): an offline
baseline of the BCPG-NSA paper's table."""

import jax
import jax.numpy as jnp

from nsa_jax.losses.advantages import all_wrong_fraction
from nsa_jax.losses.aggregation import aggregate
from nsa_jax.losses.policy import Metrics
from nsa_jax.losses.types import LossTerm, f32


def topr_loss(
    logp: jax.Array,
    logp_b: jax.Array,
    rewards: jax.Array,
    mask: jax.Array,
    group_size: int,
    *,
    baseline: float = 0.0,
    max_len: int | None = None,
) -> tuple[LossTerm, Metrics]:
    """TOPR [paper, the gradient of its objective]: ``R_i = 2 r_i - 1 - baseline`` (so {-1, +1} by default) and
    the sequence ratio to the behaviour policy ``w_i = exp(sum_t m (logp - logp_b))``. Positive examples
    (``R_i >= 0``) get weight 1, plain SFT on them; negative ones the truncated ratio ``sg(clip(w_i, 0, 1))``, so a
    negative the policy has already moved away from stops pushing. Per-token loss ``-sg(weight_i) R_i logp_t``,
    aggregated ``"seq-mean-token-sum-norm"`` (a sequence log-prob sum up to the constant ``L_max = max_len``,
    default the array width). No clipping of the positive term, no KL. ``group_size`` is unused (TOPR has no
    group statistics) and kept for the common signature.

    Metrics: ``tokens``, ``topr_neg_weight_mean`` (mean truncated ratio of the negatives, a LossTerm),
    ``all_wrong_frac``.
    """
    mask, logp = f32(mask), f32(logp)
    signed = 2.0 * f32(rewards) - 1.0 - f32(baseline)  # [B] R_i
    log_ratio = jnp.sum(mask * (jax.lax.stop_gradient(logp) - f32(logp_b)), axis=1)  # [B]
    truncated = jnp.exp(jnp.minimum(jnp.clip(log_ratio, -20.0, 20.0), 0.0))  # clip(w, 0, 1), finite
    negative = signed < 0
    weight = jnp.where(negative, truncated, 1.0)  # [B], no gradient
    term = aggregate(-(weight * signed)[:, None] * logp, mask, "seq-mean-token-sum-norm", max_len=max_len)
    has_tokens = jnp.sum(mask, axis=1) > 0
    neg_rows = f32(negative & has_tokens)
    metrics = {
        "tokens": jnp.sum(mask),
        "topr_neg_weight_mean": LossTerm(jnp.sum(truncated * neg_rows), jnp.sum(neg_rows)),
        "all_wrong_frac": all_wrong_fraction(rewards, group_size),
    }
    return term, metrics
