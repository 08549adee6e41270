"""Per-token KL estimators between the trained policy and a reference (Schulman 2020, "Approximating KL
divergence", http://joschu.net/blog/kl-approx.html; ALGORITHMS.md section 1)."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from nsa_jax.losses.types import f32, lookup

LOG_RATIO_CLAMP = 20.0  # log-ratios are clamped to [-20, 20] before exp: finite in bf16 and f32


KL_ESTIMATORS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "k1": lambda d: -d,
    "k2": lambda d: 0.5 * d * d,
    "k3": lambda d: jnp.expm1(d) - d,
}


def kl(logp: jax.Array, logp_ref: jax.Array, kind: str = "k3") -> jax.Array:
    """Per-token estimate of ``KL(pi_theta || pi_ref)`` from sampled tokens, ``[B, T]`` float32.

    With ``d = logp_ref - logp`` clamped to ``[-20, 20]``:
    ``"k1" = -d`` (unbiased, high variance), ``"k2" = d^2 / 2``, ``"k3" = exp(d) - d - 1`` (unbiased, always
    >= 0; GRPO's estimator, arXiv 2402.03300 eq. 4; default).

    Args:
      logp: ``[B, T]`` log-probs of the policy being trained (differentiable).
      logp_ref: ``[B, T]`` log-probs of the frozen reference (or behaviour) policy.
      kind: one of ``KL_ESTIMATORS`` (default ``"k3"``); ValueError otherwise.
    """
    fn = lookup(KL_ESTIMATORS, kind, "kl_kind")
    d = jnp.clip(f32(logp_ref) - f32(logp), -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    return fn(d)
