"""The main job on a laptop CPU, no download: SFT the built-in tiny model on the easiest arithmetic level, then
report held-out greedy pass@1 by difficulty (level 1 is the trained level, level 2 has one more step).

python -m nsa_jax.main --config=configs/demo.py   (600 SFT steps + evaluation)
"""

from configs import base


def get_config(arg=None):
    c = base.get_config(arg)
    c.workdir = "runs/demo"
    c.data.task = "arith"
    c.data.difficulty = 1
    c.data.seq_len = 96
    c.batch_size = 16
    c.max_steps = 600
    c.log_every = 50
    c.checkpoint.every = 200
    c.optimizer.learning_rate = 3e-3
    c.optimizer.warmup_steps = 20
    c.eval.enabled = True
    c.eval.difficulties = (1, 2)
    c.eval.num_problems = 64
    c.eval.max_new_tokens = 64
    c.eval.batch_size = 64
    return base.lock(c)
