"""The PRM of BCPG-NSA's PRM judge on the miniature: a scalar head on the SFT start's backbone, trained with step
BCE on a stored set of the SFT start's responses labelled by the arith task's step checker. The set's prompts are
drawn with data.seed 1, not the offline methods' 0, so the PRM judges their set from other problems. Held-out judge
quality in <workdir>/eval_prm.json; the head in <workdir>/export (point `offline.prm_dir` there).

python -m nsa_jax.main --config=configs/prm_tiny.py
"""

from configs import base
from configs.rl_presets import miniature, offline_method, prm_defaults


def get_config(arg=None):
    c = prm_defaults(offline_method(miniature(base.get_config(arg)), "bcpg"))
    c.workdir = "runs/prm_tiny"
    c.data.seed = 1  # other prompts than the offline methods' stored set (data.seed 0)
    c.batch_size = 64  # 8 groups of 8 responses a step
    c.optimizer.learning_rate = 1e-3
    c.optimizer.warmup_steps = 10
    c.optimizer.weight_decay = 0.0
    c.log_every = 5
    c.export.enabled = True
    return base.lock(c)
