"""PNS's negative generator on the miniature: a copy of the SFT start trained with GRPO on the composite reward (the
reward model of `rm_tiny.py`, the PRM of `prm_tiny.py`), so it learns well-formed, coherent, wrong answers.

python -m nsa_jax.main --config=configs/pns_tiny.py --config.pns.rm_dir=runs/rm_tiny/export \
    --config.pns.prm_dir=runs/prm_tiny/export
"""

from configs import base
from configs.rl_presets import method, miniature, pns_defaults


def get_config(arg="grpo"):
    c = pns_defaults(method(miniature(base.get_config()), arg or "grpo"))
    c.workdir = "runs/pns_tiny"
    c.rl.train_difficulties = (1,)
    c.rl.num_rollouts = 50
    c.optimizer.learning_rate = 3e-5  # what it was measured with; the online methods moved to 1e-4 (issue 18)
    c.eval.difficulties = (1,)
    c.export.enabled = True
    return base.lock(c)
