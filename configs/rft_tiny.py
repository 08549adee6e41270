"""RFT (Yuan et al. 2023, arXiv 2308.01825): sample, keep the correct answers, SFT (token NLL) on them;
wrong answers are discarded.

The miniature: built-in arith task, tiny model, 2-core CPU. Start from an SFT export:
python -m nsa_jax.main --config=configs/sft_tiny.py
python -m nsa_jax.main --config=configs/rft_tiny.py
"""

import ml_collections

from configs import base
from nsa_jax.train.rl_config import miniature


def get_config(arg=None):
    c = miniature(base.get_config(arg))
    c.workdir = "runs/rft_tiny"
    c.rl.loss = "rft"
    c.rl.loss_kwargs = ml_collections.ConfigDict({"agg": "token-mean"})
    return base.lock(c)
