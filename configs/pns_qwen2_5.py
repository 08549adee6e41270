"""PNS at real scale, one stage per argument, on local MATH-layout JSONL:
- "rm": the reward model, a scalar head on `model.path`'s backbone, Bradley-Terry on (correct, wrong) pairs of a
  stored offline set (`rm.dataset_dir`, e.g. the one `configs/offline_qwen2_5.py` wrote);
- "generator" (default): the negative generator, a copy of a local instruct checkpoint (`model.path`; the paper:
  Qwen2.5-7B-Instruct [secondary]) trained with GRPO on the composite reward (`pns.rm_dir`, `pns.prm_dir`);
- "pairs": the policy's correct answers against PNS, rejection-sampled and random negatives on the same prompts
  (`pns.generator_dir`), with the plausibility report; then DPO on each pair file (`dpo.pairs=`).

launch/tpu_pod.sh --config=configs/pns_qwen2_5.py:generator --config.model.path=/mnt/models/Qwen2.5-7B-Instruct \\
    --config.data.dir=/mnt/data/math --config.pns.rm_dir=/mnt/ckpt/rm/export --config.pns.prm_dir=/mnt/ckpt/prm/export
"""

from configs import base
from configs.rl_presets import method, pns_defaults, qwen2_5_1_5b, rm_defaults

STAGES = ("rm", "generator", "pairs")


def get_config(arg="generator"):
    stage = arg or "generator"
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} is not one of {STAGES}")
    c = qwen2_5_1_5b(base.get_config(), "math")
    c.workdir = f"runs/pns_{stage}_qwen2_5"
    if stage == "rm":
        c = rm_defaults(c)
        c.rm.dataset_dir = "runs/offline_set"
        c.rm.epochs = 2
        c.data.seq_len = 1536  # prompt + response + EOS of the stored set's rows
        c.optimizer.learning_rate = 1e-5
        c.export.enabled = True
        c.eval.every = 0
        return base.lock(c)
    c = pns_defaults(method(c, "grpo"))
    c.pns.format_style = "boxed"  # MATH answers in \\boxed{}
    c.pns.rm_dir = "checkpoints/rm/export"
    c.pns.prm_dir = "checkpoints/prm/export"
    c.pns.score_rows = 16
    if stage == "pairs":
        c.trainer = "pns_pairs"
        c.pns.generator_dir = "runs/pns_generator_qwen2_5/export"
        c.pns.num_prompts = 1000
        c.pns.difficulties = (1, 2, 3, 4, 5)
        c.pns.samples = 8
        c.pns.prompts_per_call = 16
        c.eval.enabled = False
    else:
        c.export.enabled = True
    return base.lock(c)
