"""SFT of the built-in tiny model on the easiest arithmetic level (CPU, minutes): the start of every RL miniature.

Half the demonstrations stop one step short and answer the value the step before reached (`data.stop_early`, a
procedural slip, as a model answers a sub-question), so the start has two procedures and RL can learn, on the
prompts it sees, one that carries over to every other prompt: finish the chain (issue 18). Before, on canonical
demonstrations only, the start's errors were arithmetic facts that RL learned prompt by prompt: GRPO gained
0.01-0.06 in 50 rollouts depending on the machine. Here (AMD EPYC, 2 cores) the start is at held-out level-1
sampled pass@1 0.125 (pass@8 0.46, about 40% of training groups all wrong) and GRPO gains +0.10 in 50 rollouts
(README, "The miniature"). 1200 steps at batch 32 (600 left the worked procedure's arithmetic weak: start 0.057).

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
    c.data.stop_early = 0.5
    c.max_steps = 1200
    c.optimizer.learning_rate = 3e-3
    c.optimizer.warmup_steps = 20
    c.checkpoint.every = 600
    return base.lock(c)
