"""GRPO (Shao et al. 2024, arXiv 2402.03300): group-normalised advantages, clipped surrogate.

The miniature: built-in arith task, tiny model, 2-core CPU. Start from an SFT export:
python -m nsa_jax.main --config=configs/sft_tiny.py
python -m nsa_jax.main --config=configs/grpo_tiny.py
"""

import ml_collections

from configs import base
from nsa_jax.train.rl_config import miniature


def get_config(arg=None):
    c = miniature(base.get_config(arg))
    c.workdir = "runs/grpo_tiny"
    c.rl.loss = "grpo"
    c.rl.loss_kwargs = ml_collections.ConfigDict({"eps_low": 0.2, "eps_high": 0.2, "agg": "token-mean", "std_ddof": 1})
    return base.lock(c)
