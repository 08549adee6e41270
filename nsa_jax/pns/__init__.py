"""nsa_jax.pns: plausible negative samples (arXiv 2602.03516): the composite reward of the negative generator, its
format and chain-of-thought scores, and the reward function that feeds it to the online RL trainer
(`CompositeReward`). The sources of negatives and the plausibility report arrive with the rest of the pipeline."""

from nsa_jax.pns.generator import CompositeReward, encode_responses
from nsa_jax.pns.reward import composite_reward, cot_score, format_ok

__all__ = ["CompositeReward", "composite_reward", "cot_score", "encode_responses", "format_ok"]
