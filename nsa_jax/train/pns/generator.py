"""Negative-generator trainer (`config.trainer = "pns_generator"`): a separate copy of the start policy trained by
the online RL trainer (its `rl.*` method, GRPO by default) with PNS's composite reward as the reward function
(`pns.CompositeReward`: format gate, verifier, the reward model in `pns.rm_dir`, the PRM judge in `pns.prm_dir` for
the chain-of-thought score). Everything else is the RL trainer's: rollouts, checkpoints, resume, the held-out
evaluation (which always verifies, so its pass@1 falling is the generator learning to be wrong). Its samples, kept
when verified wrong, are the PNS negatives.

`<workdir>/eval_rl.json` gets the run's summary; the per-rollout `reward` in metrics.jsonl is the composite reward.
"""

from __future__ import annotations

import ml_collections
from flax import nnx

from nsa_jax import judges, models, pns
from nsa_jax.train.rl.trainer import PROMPT_FORMATS, make_task, train_and_report


def composite_reward_fn(config: ml_collections.ConfigDict) -> pns.CompositeReward:
    """The composite reward of `config.pns` on the task of `config.data`."""
    p = config.pns
    if not p.rm_dir or not p.prm_dir:
        raise ValueError("pns.rm_dir and pns.prm_dir must name a reward-model and a PRM head directory")
    path = config.model.path
    tokenizer = models.load_tokenizer(path)
    for directory, what in ((p.rm_dir, "reward model"), (p.prm_dir, "PRM")):
        models.check_same_vocabulary(directory, tokenizer, what)
    return pns.CompositeReward(
        make_task(config),
        tokenizer,
        rm=models.from_pretrained_head(p.rm_dir),
        prm=judges.PRMJudge(models.from_pretrained_head(p.prm_dir), threshold=p.prm_threshold, rows=p.score_rows),
        prompt_fn=PROMPT_FORMATS[config.rl.prompt_format](tokenizer),
        width=config.rl.max_prompt_len + config.rl.max_new_tokens + 1,
        rows=p.score_rows,
        style=p.format_style,
        deadline_s=config.rl.verify_deadline_s,
        weights={k: p[k] for k in ("w_fmt", "w_inv", "w_rm", "w_cot")},
    )


def train(config: ml_collections.ConfigDict) -> nnx.Module:
    """Reverse RL of the generator; returns it (exported to `<workdir>/export` with `export.enabled`)."""
    return train_and_report(config, reward_fn=composite_reward_fn(config))[0]
