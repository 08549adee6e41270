"""SFT of the built-in tiny model on the easiest arithmetic level (CPU, minutes): the start of every RL miniature.

The SFT stage of `configs/demo.py` (batch 32, learning rate 3e-3, 600 steps; measured level-1 greedy pass@1 0.41).
At batch 16 the tiny model stalls near 0.25 nats/token for 1000 steps (greedy pass@1 0.03); the previous recipe
here (learning rate 1e-3, 300-500 steps) gave RL a start at sampled pass@1 0.14, too weak for RL to move.

python -m nsa_jax.main --config=configs/sft_tiny.py
"""

from configs import base


def get_config(arg=None):
    c = base.get_config(arg)
    c.workdir = "runs/sft_tiny"
    c.data.task = "arith"
    c.data.difficulty = 1
    c.data.seq_len = 80  # level-1 prompt + newline + solution + EOS is at most 79 characters
    c.batch_size = 32
    c.max_steps = 600
    c.optimizer.learning_rate = 3e-3
    c.optimizer.warmup_steps = 20
    c.checkpoint.every = 300
    return base.lock(c)
