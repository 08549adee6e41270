"""LENS (arXiv 2510.08696, ALGORITHMS.md section 2): wrong answers get a negative reward growing with the
policy's confidence; all-wrong groups are de-meaned and scaled by alpha instead of dropped.

The miniature: built-in arith task, tiny model, 2-core CPU. Start from an SFT export:
python -m nsa_jax.main --config=configs/sft_tiny.py
python -m nsa_jax.main --config=configs/lens_tiny.py
"""

import ml_collections

from configs import base
from nsa_jax.train.rl_config import miniature


def get_config(arg=None):
    c = miniature(base.get_config(arg))
    c.workdir = "runs/lens_tiny"
    c.rl.loss = "lens"
    c.rl.loss_kwargs = ml_collections.ConfigDict(
        {"alpha": 0.25, "dimp_uses_pbar": True, "eps_low": 0.2, "eps_high": 0.2, "std_ddof": 1}
    )
    return base.lock(c)
