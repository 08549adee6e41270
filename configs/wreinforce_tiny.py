"""W-REINFORCE (Zhu et al. 2025, arXiv 2506.01347), the miniature: built-in arith task, tiny model, 2-core CPU.
The method's knobs are in nsa_jax.train.rl_config.METHODS["wreinforce"]. Start from an SFT export:

python -m nsa_jax.main --config=configs/sft_tiny.py
python -m nsa_jax.main --config=configs/wreinforce_tiny.py
"""

from configs import base
from nsa_jax.train.rl_config import method, miniature


def get_config(arg=None):
    c = method(miniature(base.get_config(arg)), "wreinforce")
    c.workdir = "runs/wreinforce_tiny"
    return base.lock(c)
