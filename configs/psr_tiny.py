"""PSR (Zhu et al. 2025, arXiv 2506.01347): only positive samples, advantage +1 on right answers, 0 on wrong.

The miniature: built-in arith task, tiny model, 2-core CPU. Start from an SFT export:
python -m nsa_jax.main --config=configs/sft_tiny.py
python -m nsa_jax.main --config=configs/psr_tiny.py
"""

import ml_collections

from configs import base
from nsa_jax.train.rl_config import miniature


def get_config(arg=None):
    c = miniature(base.get_config(arg))
    c.workdir = "runs/psr_tiny"
    c.rl.loss = "psr"
    c.rl.loss_kwargs = ml_collections.ConfigDict({"eps_low": 0.2, "eps_high": 0.2})
    return base.lock(c)
