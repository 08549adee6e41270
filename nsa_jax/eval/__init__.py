"""nsa_jax.eval: pass@k (unbiased), maj@k and accuracy by difficulty bucket; intervals for comparisons (numpy)."""

from nsa_jax.eval.metrics import (
    accuracy_by_bucket,
    maj_at_k,
    majority_vote,
    pass_at_k,
    pass_at_k_by_bucket,
    pass_at_k_curve,
)
from nsa_jax.eval.stats import Interval, paired_bootstrap, t_interval

__all__ = [
    "Interval",
    "accuracy_by_bucket",
    "maj_at_k",
    "majority_vote",
    "paired_bootstrap",
    "pass_at_k",
    "pass_at_k_by_bucket",
    "pass_at_k_curve",
    "t_interval",
]
