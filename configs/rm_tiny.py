"""The PNS reward model on the miniature: a scalar head on the SFT start's backbone, trained with the
centre-regularised Bradley-Terry loss on (correct, wrong) pairs of a stored offline set (or a {prompt, chosen,
rejected} JSONL: `--config.rm.pairs=path`); held-out pairwise accuracy in <workdir>/eval_rm.json, the head exported
as an HF sequence-classification directory in <workdir>/export.

python -m nsa_jax.main --config=configs/rm_tiny.py --config.rm.dataset_dir=runs/offline_set
"""

from configs import base
from configs.rl_presets import rm_defaults


def get_config(arg=None):
    c = rm_defaults(base.get_config(arg))
    c.workdir = "runs/rm_tiny"
    c.model.path = "runs/sft_tiny/export"
    c.data.seq_len = 80  # JSONL pairs: prompt + response + EOS per row
    c.batch_size = 32  # 16 pairs a step
    c.optimizer.learning_rate = 1e-3
    c.optimizer.warmup_steps = 10
    c.optimizer.weight_decay = 0.0
    c.log_every = 10
    c.checkpoint.every = 100
    c.metrics.tensorboard = False
    return base.lock(c)
