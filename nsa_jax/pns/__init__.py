"""nsa_jax.pns: plausible negative samples (arXiv 2602.03516): the composite reward of the negative generator, its
format and chain-of-thought scores, and the reward function that feeds it to the online RL trainer
(`CompositeReward`); the sources of negatives (PNS, rejection-sampled, random), their pairs and the plausibility
report (`negatives`)."""

from nsa_jax.pns.generator import CompositeReward, RewardModelScorer, encode_responses
from nsa_jax.pns.negatives import (
    SOURCES,
    build_pairs,
    correct_prefix_share,
    plausibility,
    random_negatives,
    split_by_rewards,
)
from nsa_jax.pns.reward import composite_reward, cot_score, format_ok

__all__ = [
    "SOURCES",
    "CompositeReward",
    "RewardModelScorer",
    "build_pairs",
    "composite_reward",
    "correct_prefix_share",
    "cot_score",
    "encode_responses",
    "format_ok",
    "plausibility",
    "random_negatives",
    "split_by_rewards",
]
