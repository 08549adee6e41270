"""The miniature's LLM judge: the SFT start fine-tuned on (compact judge prompt, verdict) examples made from the arith
task's ground-truth step labels of a stored set of its own responses (data.seed 1: other prompts than the offline
methods' set), then measured on held-out prompts' wrong responses (<workdir>/eval_llm_judge.json). Point
`offline.llm_judge_dir` at <workdir>/export with `offline.llm_judge_style=compact`, `offline.llm_judge_format=plain`.

python -m nsa_jax.main --config=configs/llm_judge_tiny.py
"""

from configs import base
from configs.rl_presets import judge_defaults, miniature, offline_method


def get_config(arg=None):
    c = judge_defaults(offline_method(miniature(base.get_config(arg)), "bcpg"))
    c.workdir = "runs/llm_judge_tiny"
    c.data.seed = 1  # the PRM's stored set: other prompts than the offline methods' (data.seed 0)
    c.batch_size = 32
    c.optimizer.learning_rate = 1e-3
    c.optimizer.warmup_steps = 20
    c.log_every = 10
    c.checkpoint.every = 300
    c.metrics.tensorboard = False
    return base.lock(c)
