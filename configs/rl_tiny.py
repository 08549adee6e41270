"""One online RL method on the miniature: built-in arith task, tiny model, 2-core CPU. The argument names the method
(grpo, drgrpo, lens, nsr, psr, wreinforce, ngrpo, rft); its knobs and sources are in
configs/rl_presets.py (METHODS). Start from an SFT export:

python -m nsa_jax.main --config=configs/sft_tiny.py
python -m nsa_jax.main --config=configs/rl_tiny.py:lens
"""

from configs import base
from configs.rl_presets import method, miniature


def get_config(arg="grpo"):
    name = arg or "grpo"
    c = method(miniature(base.get_config()), name)
    c.workdir = f"runs/{name}_tiny"
    return base.lock(c)
