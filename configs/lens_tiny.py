"""LENS (arXiv 2510.08696, ALGORITHMS.md section 2), the miniature: built-in arith task, tiny model, 2-core CPU.
The method's knobs are in nsa_jax.train.rl_config.METHODS["lens"]. Start from an SFT export:

python -m nsa_jax.main --config=configs/sft_tiny.py
python -m nsa_jax.main --config=configs/lens_tiny.py
"""

from configs import base
from nsa_jax.train.rl_config import method, miniature


def get_config(arg=None):
    c = method(miniature(base.get_config(arg)), "lens")
    c.workdir = "runs/lens_tiny"
    return base.lock(c)
