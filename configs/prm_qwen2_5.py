"""The PRM of BCPG-NSA's PRM judge at real scale: a scalar head on a local backbone directory (`prm.backbone`),
trained with step BCE on Monte-Carlo step labels (MATH has no step checker: a step is right when one of
`prm.mc_samples` completions after it reaches the reference answer) of a stored set sampled by the policy in
`model.path` from local MATH-layout JSONL. The set's prompts are drawn with data.seed 1, so the PRM judges the
offline methods' set (data.seed 0) from other problems.

launch/slurm_gpu.sh --config=configs/prm_qwen2_5.py --config.model.path=/data/models/policy \\
    --config.prm.backbone=/data/models/Qwen2.5-1.5B --config.data.dir=/data/math --config.workdir=/data/ckpt/prm
"""

from configs import base
from configs.rl_presets import offline_method, prm_defaults, qwen2_5_1_5b


def get_config(arg=None):
    c = prm_defaults(offline_method(qwen2_5_1_5b(base.get_config(arg), "math"), "bcpg"))
    c.workdir = "runs/prm_qwen2_5"
    c.data.seed = 1
    c.prm.backbone = "checkpoints/Qwen2.5-1.5B"  # any local causal-LM directory of the supported families
    c.prm.labels = "mc"
    c.prm.mc_samples = 4
    c.offline.num_prompts = 1000
    c.offline.difficulties = (1, 2, 3, 4, 5)
    c.offline.samples_per_prompt = 8
    c.offline.prompts_per_call = 16
    c.offline.temperature = 0.7
    c.prm.epochs = 2
    c.batch_size = 64
    c.micro_batch_size = 16
    c.optimizer.learning_rate = 1e-5
    c.export.enabled = True
    c.eval.enabled = False
    return base.lock(c)
