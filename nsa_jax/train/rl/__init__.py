"""Online RL (`config.trainer = "rl"`): GRPO, Dr.GRPO, LENS, NSR / PSR / W-REINFORCE, NGRPO and RFT on one loop."""

from nsa_jax.train.rl.heldout import problems_by_level
from nsa_jax.train.rl.loss import make_policy_loss_fn, tis_scaled
from nsa_jax.train.rl.trainer import (
    RLRun,
    check_rewards,
    make_task,
    rollout_problems,
    summarize,
    train,
    train_and_report,
)
from nsa_jax.train.rl.update import RLUpdate, logp_old_from_step, make_engine, steps_per_rollout

__all__ = [
    "RLRun",
    "RLUpdate",
    "check_rewards",
    "logp_old_from_step",
    "make_engine",
    "make_policy_loss_fn",
    "make_task",
    "problems_by_level",
    "rollout_problems",
    "steps_per_rollout",
    "summarize",
    "tis_scaled",
    "train",
    "train_and_report",
]
