"""nsa_jax.pns: plausible negative samples (arXiv 2602.03516). Today: the composite reward of the negative
generator and its format and chain-of-thought scores; the generator, the sources of negatives and the
plausibility report arrive with the PNS pipeline."""

from nsa_jax.pns.reward import composite_reward, cot_score, format_ok

__all__ = ["composite_reward", "cot_score", "format_ok"]
