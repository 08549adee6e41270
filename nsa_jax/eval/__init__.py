"""nsa_jax.eval: pass@k (unbiased), maj@k and accuracy by difficulty bucket (numpy only)."""

from nsa_jax.eval.metrics import (
    accuracy_by_bucket,
    maj_at_k,
    majority_vote,
    pass_at_k,
    pass_at_k_by_bucket,
    pass_at_k_curve,
)

__all__ = [
    "accuracy_by_bucket",
    "maj_at_k",
    "majority_vote",
    "pass_at_k",
    "pass_at_k_by_bucket",
    "pass_at_k_curve",
]
