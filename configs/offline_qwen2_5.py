"""BCPG-NSA's offline pipeline at real scale: a local HF policy directory as the behaviour policy and start, local
MATH-layout JSONL, a local instruct checkpoint as the LLM judge and a PRM head (trained by `configs/prm_qwen2_5.py`)
for the consensus labels. The argument is an offline method of configs/rl_presets.py (OFFLINE_METHODS), or
`bcpg_nsa,beta=X` for a point of the beta sweep; BCPG-NSA uses the judges' consensus. The paper's settings where they fit: responses at temperature 0.7, prompts whose
responses are all right or all wrong dropped, 8 epochs, lr 5e-7 -> 2.5e-7 [secondary: the paper's 14B policy and
batch 512; 16 responses per prompt here, not 32].

TPU=... ZONE=... launch/tpu_pod.sh --config=configs/offline_qwen2_5.py:bcpg_nsa \\
    --config.model.path=/mnt/models/policy --config.data.dir=/mnt/data/math \\
    --config.offline.llm_judge_dir=/mnt/models/Qwen2.5-7B-Instruct --config.offline.prm_dir=/mnt/ckpt/prm/export \\
    --config.workdir=/mnt/ckpt/bcpg_nsa --config.offline.dataset_dir=/mnt/ckpt/offline_set
(or launch/slurm_gpu.sh with the same arguments). Point every method at one `offline.dataset_dir` to compare them.
"""

from configs import base
from configs.rl_presets import offline_arg, offline_method, qwen2_5_1_5b


def get_config(arg="bcpg_nsa"):
    name, beta = offline_arg(arg)
    c = offline_method(qwen2_5_1_5b(base.get_config(), "math"), name, beta)
    c.workdir = f"runs/{name}_offline_qwen2_5" if beta is None else f"runs/{name}_beta{beta:g}_offline_qwen2_5"
    if name == "bcpg_nsa":
        c.offline.step_labels = "consensus"  # the paper's: LLM judge AND PRM judge
    c.offline.prm_dir = "checkpoints/prm/export"  # a PRM head (configs/prm_qwen2_5.py's export)
    c.offline.llm_judge_dir = "checkpoints/Qwen2.5-7B-Instruct"  # any local instruct checkpoint
    c.offline.llm_judge_style = "full"  # the rules in words
    c.offline.llm_judge_format = "chat"
    c.offline.llm_judge_max_prompt_len = 2048  # problem, reference and up to ~1.5k tokens of numbered steps
    c.offline.llm_judge_max_new_tokens = 256
    c.offline.llm_judge_batch_size = 16
    c.offline.num_prompts = 2000  # the paper: 2,069 questions
    c.offline.difficulties = (1, 2, 3, 4, 5)
    c.offline.samples_per_prompt = 16
    c.offline.prompts_per_call = 16
    c.offline.temperature = 0.7
    c.offline.epochs = 8
    c.optimizer.learning_rate = 5e-7
    c.optimizer.end_lr_factor = 0.5
    c.batch_size = 128  # 8 groups of 16
    c.micro_batch_size = 16
    c.eval.every = 0  # before and after training only
    return base.lock(c)
