"""One online RL method on a local Qwen2.5-1.5B-Instruct checkpoint and local GSM8K (default) or MATH JSONL files.
The argument is "method" or "method,data" (method as in METHODS of configs/rl_presets.py; data gsm8k or math).

python -m nsa_jax.main --config=configs/rl_qwen2_5_1_5b.py:lens,math --config.model.path=/path/to/Qwen2.5-1.5B-Instruct \\
    --config.data.dir=/path/to/math_jsonl
"""

from configs import base
from configs.rl_presets import method, qwen2_5_1_5b


def get_config(arg="grpo"):
    name, _, data = (arg or "grpo").partition(",")
    c = method(qwen2_5_1_5b(base.get_config(), data or "gsm8k"), name)
    c.workdir = f"runs/{name}_qwen2_5_1_5b_{c.data.task}"
    return base.lock(c)
