"""The optimiser: AdamW with linear warmup then cosine decay, after global-norm gradient clipping.

One function builds it from `config.optimizer`, so every trainer (SFT, RL, BCPG, DPO) uses the same recipe and a
run's optimiser is fully described by its config.
"""

from __future__ import annotations

import jax
import ml_collections
import optax


def learning_rate_schedule(opt: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
    """0 -> `learning_rate` linearly over `warmup_steps`, then cosine down to `learning_rate * end_lr_factor`."""
    warmup = max(0, min(opt.warmup_steps, total_steps))
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=opt.learning_rate,
        warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1),
        end_value=opt.learning_rate * opt.end_lr_factor,
    )


def _decay_mask(params):
    """Weight decay on matrices only: norms' scales and biases are not pulled toward zero (the usual LLM recipe)."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(opt: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
    """`clip_by_global_norm(max_grad_norm)` then AdamW (Loshchilov & Hutter, arXiv 1711.05101) on the schedule."""
    chain = []
    if opt.max_grad_norm > 0:
        chain.append(optax.clip_by_global_norm(opt.max_grad_norm))
    chain.append(
        optax.adamw(
            learning_rate_schedule(opt, total_steps),
            b1=opt.b1,
            b2=opt.b2,
            eps=opt.eps,
            weight_decay=opt.weight_decay,
            mask=_decay_mask,
        )
    )
    return optax.chain(*chain)
