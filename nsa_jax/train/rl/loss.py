"""The RL `loss_fn(model, micro_batch, rng)` for the core's train step.

The maths stays in `nsa_jax.losses`: this file computes the policy's token log-probs (`core.scoring`, never full
float32 logits) and hands them, with the batch's rewards and any extra arrays the method declares, to the policy
loss registered under the method's name.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from nsa_jax import losses
from nsa_jax.train.core.scoring import sequence_logprobs
from nsa_jax.train.core.step import Batch, LossFn


def tis_scaled(logp: jax.Array, logp_old: jax.Array, sampler_logp: jax.Array, cap: float) -> jax.Array:
    """Truncated importance sampling against the sampler/trainer mismatch (Yao et al. 2025, "Your efficient RL
    framework secretly brings you off-policy RL training"): the gradient of each token is scaled by
    `w_t = min(exp(logp_old - sampler_logp), cap)`, with the forward value (and so the PPO ratio and every
    denominator) unchanged. Written as `w * logp + (1 - w) * stop_gradient(logp)`, which works with every
    registered loss because they all depend on `logp` token by token."""
    w = jnp.minimum(jnp.exp(jnp.clip(logp_old - sampler_logp, -20.0, 20.0)), cap)  # [B, T]
    return w * logp + (1.0 - w) * jax.lax.stop_gradient(logp)


def mismatch_metrics(logp_old: jax.Array, sampler_logp: jax.Array, mask: jax.Array) -> dict[str, Any]:
    """`rollouts.mismatch_stats` inside the step: mean, max and min of `exp(logp_old - sampler_logp)` over the
    tokens of `mask`. The step combines micro-batches by name: the mean is a `LossTerm` (exact), the max and min
    are taken over the micro-batches whose loss counts tokens (each is -inf / +inf on a micro-batch without any)."""
    on = mask > 0
    ratio = jnp.exp(jnp.clip(logp_old - sampler_logp, -20.0, 20.0))
    return {
        "mismatch_ratio_mean": losses.LossTerm(jnp.sum(jnp.where(on, ratio, 0.0)), jnp.sum(on).astype(jnp.float32)),
        "mismatch_ratio_max": jnp.max(jnp.where(on, ratio, -jnp.inf)),
        "mismatch_ratio_min": jnp.min(jnp.where(on, ratio, jnp.inf)),
    }


def make_policy_loss_fn(
    name: str,
    knobs: Mapping[str, Any],
    *,
    group_size: int,
    chunk_size: int,
    beta_kl: float = 0.0,
    tis_cap: float = 0.0,
    max_len: int | None = None,
    batch_kwargs: Mapping[str, str] | None = None,
) -> LossFn:
    """The loss_fn of method `name` (a key of `losses.POLICY_LOSSES`) with its knobs.

    The micro-batch holds whole groups (the core step guarantees it) and carries `input_ids`, `attention_mask`,
    `loss_mask`, `rewards` and `logp_old`; plus `logp_ref` when `beta_kl > 0` and `sampler_logp` when
    `tis_cap > 0`. `batch_kwargs` maps further keyword arguments of the loss to the batch arrays that hold them
    (BCPG-NSA's `step_ids` / `step_correct`, say): the method declares them, the trainer adds them to its `Batch`
    (per token or per row), and they reach the loss through sharding, micro-batching and the token-band cut.
    `max_len` is the `L_max` of "seq-mean-token-sum-norm" aggregation when the knobs do not set it: pass the
    response budget, because the batch width is not a constant (the update drops padding columns).

    A batch without `logp_old` (`RLUpdate` leaves it out when a rollout is one optimiser step): the step's own
    log-probs stand in for it, gradient stopped, which is exact there (the scoring pass would score the very
    parameters the step differentiates) and saves that pass's forward. The sampler/trainer mismatch statistics
    (`mismatch_ratio_*`) are then computed here from the batch's `sampler_logp`, over the loss mask's tokens.
    """
    loss = losses.get_policy_loss(name)
    extra = dict(knobs)
    if max_len is not None and _accepts(loss, "max_len"):  # BCPG has no L_max
        extra.setdefault("max_len", max_len)
    if beta_kl > 0:
        extra["beta_kl"] = beta_kl

    def loss_fn(model: nnx.Module, batch: Batch, rng: jax.Array) -> tuple[losses.LossTerm, dict[str, Any]]:
        del rng  # the policy losses are deterministic given the rollout
        mask = batch["loss_mask"]
        logp = sequence_logprobs(model, batch, chunk_size=chunk_size, group_size=group_size) * mask  # [B, T]
        step_metrics = {}
        if "logp_old" not in batch:  # a static fact of the traced step: the batch's keys are its layout
            logp_old = jax.lax.stop_gradient(logp)
            step_metrics = mismatch_metrics(logp_old, batch["sampler_logp"], mask)
        else:
            logp_old = batch["logp_old"]
        if tis_cap > 0:
            logp = tis_scaled(logp, logp_old, batch["sampler_logp"], tis_cap)
        kwargs = {**extra, **{name: batch[key] for name, key in (batch_kwargs or {}).items()}}
        if beta_kl > 0:
            kwargs["logp_ref"] = batch["logp_ref"]
        term, metrics = loss(logp, logp_old, batch["rewards"], mask, group_size, **kwargs)
        return term, {"policy_loss": term, **metrics, **step_metrics}

    return loss_fn


def _accepts(fn: Any, name: str) -> bool:
    """Whether `fn` takes the keyword `name`, by name or through `**kwargs` (the GRPO family passes its knobs on
    to `policy_loss`)."""
    params = inspect.signature(fn).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
