"""PNS (arXiv 2602.03516) on the core: the negative generator, trained by "reverse RL" on the composite reward
(`generator`), and the preference pairs of the three sources of negatives with their plausibility report (`pairs`)."""

from nsa_jax.train.pns.generator import composite_reward_fn

__all__ = ["composite_reward_fn"]
