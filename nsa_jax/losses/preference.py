"""Preference and judge losses: DPO / IPO for the policy, centre-regularised Bradley-Terry for a reward model
(ALGORITHMS.md sections 1 and 4; per-pair ``[P]`` scalars, LossTerms count pairs) and step BCE for a process reward
model (section 3; per-token ``[B, T]``, LossTerms count steps)."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from nsa_jax.losses.types import LossTerm, f32, lookup, safe_div

Metrics = dict[str, jax.Array]


def _pair_mask(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    return jnp.ones(x.shape, jnp.float32) if mask is None else f32(mask)


DPO_LOSSES: dict[str, Callable[[jax.Array, float], jax.Array]] = {
    "sigmoid": lambda h, beta: -jax.nn.log_sigmoid(beta * h),
    "ipo": lambda h, beta: jnp.square(h - 1.0 / (2.0 * beta)),
}


def dpo_loss(
    lp_chosen: jax.Array,
    lp_rejected: jax.Array,
    lr_chosen: jax.Array,
    lr_rejected: jax.Array,
    *,
    beta: float = 0.1,
    kind: str = "sigmoid",
    mask: jax.Array | None = None,
) -> tuple[LossTerm, Metrics]:
    """Direct preference optimisation on sequence log-prob sums, ``[P]`` pairs -> LossTerm (sum, pairs).

    With ``h = (lp+ - lr+) - (lp- - lr-)``:

    - ``"sigmoid"`` (DPO, Rafailov et al. 2023, arXiv 2305.18290, eq. 7): ``-log sigmoid(beta * h)`` (default).
    - ``"ipo"`` (IPO, Azar et al. 2023, arXiv 2310.12036, the sampled IPO loss of section 5): ``(h - 1 / (2 beta))^2``.

    Args:
      lp_chosen, lp_rejected: ``[P]`` policy log-prob sums of the chosen / rejected responses (differentiable).
      lr_chosen, lr_rejected: ``[P]`` the same under the frozen reference (no gradient).
      beta: inverse temperature / regularisation strength (default 0.1).
      kind: one of ``DPO_LOSSES`` (default ``"sigmoid"``); ValueError otherwise.
      mask: ``[P]`` 1 for real pairs, 0 for padding (default None: all real).

    Metrics: ``reward_chosen`` / ``reward_rejected`` (mean implicit rewards ``beta * (lp - lr)``), ``reward_margin``
    (mean ``beta * h``), ``reward_accuracy`` (fraction of pairs with ``h > 0``), ``pairs``.
    """
    fn = lookup(DPO_LOSSES, kind, "kind")
    m = _pair_mask(lp_chosen, mask)
    ref_c = jax.lax.stop_gradient(f32(lr_chosen))
    ref_r = jax.lax.stop_gradient(f32(lr_rejected))
    chosen = f32(lp_chosen) - ref_c  # [P]
    rejected = f32(lp_rejected) - ref_r
    h = chosen - rejected
    n = jnp.sum(m)
    term = LossTerm(jnp.sum(fn(h, beta) * m), n)
    sg = jax.lax.stop_gradient
    metrics = {
        "reward_chosen": safe_div(jnp.sum(beta * sg(chosen) * m), n),
        "reward_rejected": safe_div(jnp.sum(beta * sg(rejected) * m), n),
        "reward_margin": safe_div(jnp.sum(beta * sg(h) * m), n),
        "reward_accuracy": safe_div(jnp.sum((h > 0) * m), n),
        "pairs": n,
    }
    return term, metrics


def bt_loss(
    r_chosen: jax.Array,
    r_rejected: jax.Array,
    *,
    center_coef: float = 0.01,
    mask: jax.Array | None = None,
) -> tuple[LossTerm, Metrics]:
    """Centre-regularised Bradley-Terry loss for a scalar reward model, ``[P]`` pairs -> LossTerm (sum, pairs).

    Per pair ``-log sigmoid(r_w - r_l) + lambda * (r_w + r_l)^2`` (PNS, arXiv 2602.03516, reward model, read
    through a secondary source; the centring term as in Eisenstein et al. 2023, arXiv 2312.09244). The penalty
    pins the reward scale's free offset near 0.

    Args:
      r_chosen, r_rejected: ``[P]`` reward-model scores of the preferred / dispreferred response (differentiable).
      center_coef: ``lambda`` (default 0.01).
      mask: ``[P]`` 1 for real pairs, 0 for padding (default None: all real).

    Metrics: ``accuracy`` (fraction with ``r_w > r_l``), ``margin`` (mean ``r_w - r_l``), ``reward_mean``
    (mean of ``(r_w + r_l) / 2``), ``pairs``.
    """
    m = _pair_mask(r_chosen, mask)
    rw, rl = f32(r_chosen), f32(r_rejected)
    per_pair = -jax.nn.log_sigmoid(rw - rl) + center_coef * jnp.square(rw + rl)
    n = jnp.sum(m)
    margin = jax.lax.stop_gradient(rw - rl)
    metrics = {
        "accuracy": safe_div(jnp.sum((margin > 0) * m), n),
        "margin": safe_div(jnp.sum(margin * m), n),
        "reward_mean": safe_div(jnp.sum(jax.lax.stop_gradient(rw + rl) * 0.5 * m), n),
        "pairs": n,
    }
    return LossTerm(jnp.sum(per_pair * m), n), metrics


def step_bce_loss(scores: jax.Array, targets: jax.Array, mask: jax.Array) -> tuple[LossTerm, Metrics]:
    """Binary cross-entropy of a process reward model's step scores (logits), ``[B, T]`` -> LossTerm (sum, steps).

    Per step-end token (``mask`` 1: the last token of a step) ``-[y log sigmoid(s) + (1 - y) log sigmoid(-s)]`` with
    ``y`` the step's 0/1 label in ``targets`` (the BCE of ALGORITHMS.md section 3's PRM judge; the paper's PRM is
    trained this way on step labels [secondary]). Every other position carries no loss.

    Metrics: ``accuracy`` (``s > 0`` agrees with ``y``), ``positive_frac`` (share of labels 1), ``steps``.
    """
    m, s, y = f32(mask), f32(scores), f32(targets)
    per = -(y * jax.nn.log_sigmoid(s) + (1.0 - y) * jax.nn.log_sigmoid(-s))
    n = jnp.sum(m)
    hit = (jax.lax.stop_gradient(s) > 0) == (y > 0.5)
    metrics = {
        "accuracy": safe_div(jnp.sum(hit * m), n),
        "positive_frac": safe_div(jnp.sum(y * m), n),
        "steps": n,
    }
    return LossTerm(jnp.sum(per * m), n), metrics
