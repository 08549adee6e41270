"""NGRPO (arXiv 2509.18851): group statistics with one virtual correct answer, so all-wrong groups get a
negative advantage; asymmetric clip; all-correct groups dropped.

The miniature: built-in arith task, tiny model, 2-core CPU. Start from an SFT export:
python -m nsa_jax.main --config=configs/sft_tiny.py
python -m nsa_jax.main --config=configs/ngrpo_tiny.py
"""

import ml_collections

from configs import base
from nsa_jax.train.rl_config import miniature


def get_config(arg=None):
    c = miniature(base.get_config(arg))
    c.workdir = "runs/ngrpo_tiny"
    c.rl.loss = "ngrpo"
    c.rl.loss_kwargs = ml_collections.ConfigDict({"eps_low": 0.16, "eps_high": 0.24, "std_ddof": 1})
    return base.lock(c)
