"""Dr.GRPO (Liu et al. 2025, arXiv 2503.20783), the miniature: built-in arith task, tiny model, 2-core CPU.
The method's knobs are in nsa_jax.train.rl_config.METHODS["drgrpo"]. Start from an SFT export:

python -m nsa_jax.main --config=configs/sft_tiny.py
python -m nsa_jax.main --config=configs/drgrpo_tiny.py
"""

from configs import base
from nsa_jax.train.rl_config import method, miniature


def get_config(arg=None):
    c = method(miniature(base.get_config(arg)), "drgrpo")
    c.workdir = "runs/drgrpo_tiny"
    return base.lock(c)
