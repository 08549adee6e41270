"""Dr.GRPO (Liu et al. 2025, arXiv 2503.20783): advantages without the std division, aggregation
"seq-mean-token-sum-norm" with L_max the generation budget.

The miniature: built-in arith task, tiny model, 2-core CPU. Start from an SFT export:
python -m nsa_jax.main --config=configs/sft_tiny.py
python -m nsa_jax.main --config=configs/drgrpo_tiny.py
"""

import ml_collections

from configs import base
from nsa_jax.train.rl_config import miniature


def get_config(arg=None):
    c = miniature(base.get_config(arg))
    c.workdir = "runs/drgrpo_tiny"
    c.rl.loss = "drgrpo"
    c.rl.loss_kwargs = ml_collections.ConfigDict({"eps_low": 0.2, "eps_high": 0.2, "max_len": c.rl.max_new_tokens})
    return base.lock(c)
