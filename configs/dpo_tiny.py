"""DPO on the miniature: the SFT start against a frozen copy of itself, on pairs from a stored offline set (the
BCPG-NSA paper's DPO baseline) or a {prompt, chosen, rejected} JSONL (`--config.dpo.pairs=path`).

python -m nsa_jax.main --config=configs/dpo_tiny.py --config.dpo.dataset_dir=runs/offline_set

The learning rate is the online miniature's, not yet tuned for DPO. Held-out pass@1 / pass@8 on level 1 before and
after (the miniature's `eval.*` and prompt format), with each gain's paired interval, go to <workdir>/eval_dpo.json.
"""

from configs import base
from configs.rl_presets import dpo_defaults, miniature


def get_config(arg=None):
    c = dpo_defaults(miniature(base.get_config(arg)))
    c.workdir = "runs/dpo_tiny"
    c.model.path = "runs/sft_tiny/export"
    c.data.seq_len = 128  # JSONL pairs: prompt + newline + response + EOS per row (sampled responses: up to 64)
    c.batch_size = 32  # 16 pairs a step
    c.optimizer.learning_rate = 3e-5
    c.optimizer.warmup_steps = 0
    c.optimizer.weight_decay = 0.0
    c.log_every = 1
    c.checkpoint.every = 50
    c.metrics.tensorboard = False
    c.export.enabled = False
    c.eval.difficulties = (1,)
    c.eval.num_problems = 128
    c.eval.every = 0  # before and after training only
    return base.lock(c)
