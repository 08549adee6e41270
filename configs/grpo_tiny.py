"""GRPO (Shao et al. 2024, arXiv 2402.03300), the miniature: built-in arith task, tiny model, 2-core CPU.
The method's knobs are in nsa_jax.train.rl_config.METHODS["grpo"]. Start from an SFT export:

python -m nsa_jax.main --config=configs/sft_tiny.py
python -m nsa_jax.main --config=configs/grpo_tiny.py
"""

from configs import base
from nsa_jax.train.rl_config import method, miniature


def get_config(arg=None):
    c = method(miniature(base.get_config(arg)), "grpo")
    c.workdir = "runs/grpo_tiny"
    return base.lock(c)
