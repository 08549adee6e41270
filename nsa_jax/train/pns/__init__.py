"""PNS (arXiv 2602.03516) on the core: the negative generator, trained by "reverse RL" on the composite reward."""

from nsa_jax.train.pns.generator import composite_reward_fn, train

__all__ = ["composite_reward_fn", "train"]
