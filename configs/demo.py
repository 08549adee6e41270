"""The main job, the miniature comparison on a 2-core CPU with no download: SFT the built-in tiny model on the built-in arith
task, then GRPO and LENS from that same start with the same rollout budget; prints and saves (to
<workdir>/results.md and results.json) held-out pass@1 / pass@8 overall and on each evaluated level, and the share
of all-wrong groups during training.

python -m nsa_jax.main --config=configs/demo.py   (about 7 minutes on an idle 2-core machine)

SFT alone with its held-out table: python -m nsa_jax.main --config=configs/sft_tiny.py --config.eval.enabled=True
"""

import ml_collections

from configs import base, rl_tiny, sft_tiny


def get_config(arg=None):
    c = base.get_config(arg)
    c.trainer = "rl_demo"
    c.workdir = "runs/demo"
    c.sft = sft_tiny.get_config()  # its workdir becomes <workdir>/sft; its export is every method's start
    c.sft.unlock()
    c.sft.eval.enabled = False
    c.sft.metrics.tensorboard = False
    c.methods = ml_collections.ConfigDict({name: rl_tiny.get_config(name) for name in ("grpo", "lens")})
    for method in c.methods.values():  # the same rollout budget for every method: the miniature's recipe on level 1
        method.rl.num_rollouts = 50  # of 32 prompts x 8 responses, one Adam step at 3e-5 each
        method.rl.train_difficulties = (1,)  # the level SFT taught; level 2 stays out of reach at this budget
        method.eval.difficulties = (1, 2)
        method.eval.num_problems = 128  # per level, x 8 samples
        method.eval.every = method.rl.num_rollouts  # held-out evaluation at the start and the end only
    return base.lock(c)
