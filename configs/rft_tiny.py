"""RFT: sample, keep correct, SFT on them (Yuan et al. 2023, arXiv 2308.01825), the miniature: built-in arith task, tiny model, 2-core CPU.
The method's knobs are in nsa_jax.train.rl_config.METHODS["rft"]. Start from an SFT export:

python -m nsa_jax.main --config=configs/sft_tiny.py
python -m nsa_jax.main --config=configs/rft_tiny.py
"""

from configs import base
from nsa_jax.train.rl_config import method, miniature


def get_config(arg=None):
    c = method(miniature(base.get_config(arg)), "rft")
    c.workdir = "runs/rft_tiny"
    return base.lock(c)
