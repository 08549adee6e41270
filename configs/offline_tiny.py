"""One offline method of the BCPG-NSA paper on the miniature: a stored set sampled once by the SFT start, then
training on it (bcpg, bcpg_nsa, grpo_offline, topr, rft; configs/rl_presets.py, OFFLINE_METHODS). Start from an
SFT export; `bcpg_nsa,beta=X` sets the NSA beta (the paper's sweep: 1, 0.5, 0, -0.5, `BETA_SWEEP`); to compare
methods on the same set, point them at one `offline.dataset_dir`:

python -m nsa_jax.main --config=configs/sft_tiny.py
python -m nsa_jax.main --config=configs/offline_tiny.py:bcpg_nsa --config.offline.dataset_dir=runs/offline_set

The learning rate (3e-5) and epochs were the online miniature's starting point, not yet tuned for the offline methods.
"""

from configs import base
from configs.rl_presets import miniature, offline_arg, offline_method


def get_config(arg="bcpg_nsa"):
    name, beta = offline_arg(arg)
    c = offline_method(miniature(base.get_config()), name, beta)
    c.workdir = f"runs/{name}_offline_tiny" if beta is None else f"runs/{name}_beta{beta:g}_offline_tiny"
    c.batch_size = 64  # 8 groups of 8 per optimiser step
    c.optimizer.learning_rate = 3e-5  # what it was measured with; the online methods moved to 1e-4 (issue 18)
    c.log_every = 1
    c.eval.difficulties = (1,)
    c.eval.num_problems = 128
    c.eval.every = 0  # before and after training only
    return base.lock(c)
