"""Offline methods on one stored data set (`config.trainer = "offline"`): BCPG, BCPG-NSA, GRPO-offline, TOPR, RFT."""

from nsa_jax.train.offline.judging import oracle_steps
from nsa_jax.train.offline.trainer import build_dataset, step_labels, train, training_batch

__all__ = ["build_dataset", "oracle_steps", "step_labels", "train", "training_batch"]
