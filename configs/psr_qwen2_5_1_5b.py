"""PSR: positive samples only (Zhu et al. 2025, arXiv 2506.01347) on a local Qwen2.5-1.5B-Instruct checkpoint and local GSM8K (default) or MATH JSONL files.
The method's knobs are in nsa_jax.train.rl_config.METHODS["psr"].

python -m nsa_jax.main --config=configs/psr_qwen2_5_1_5b.py:math --config.model.path=/path/to/Qwen2.5-1.5B-Instruct \\
    --config.data.dir=/path/to/math_jsonl
"""

from configs import base
from nsa_jax.train.rl_config import method, qwen2_5_1_5b


def get_config(arg=None):
    c = method(qwen2_5_1_5b(base.get_config(), arg or "gsm8k"), "psr")
    c.workdir = f"runs/psr_qwen2_5_1_5b_{c.data.task}"
    return base.lock(c)
