"""SFT of the built-in tiny model on the easiest arithmetic level (CPU, minutes).

python -m nsa_jax.main --config=configs/sft_tiny.py
"""

from configs import base


def get_config(arg=None):
    c = base.get_config(arg)
    c.workdir = "runs/sft_tiny"
    c.data.task = "arith"
    c.data.difficulty = 1
    c.max_steps = 300
    c.optimizer.learning_rate = 1e-3
    return base.lock(c)
