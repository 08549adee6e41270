"""The pure train step `(state, batch) -> (state, metrics)`, with gradient accumulation and non-finite skipping.

Micro-batches hold whole groups: with `group_size` G, rows `q*G .. q*G+G-1` (prompt `q`'s responses) always land
in the same micro-batch, so a loss whose advantages use group statistics (GRPO, LENS, NGRPO, BCPG) never sees a
partial group, whichever trainer calls the step and however the batch was ordered.

Gradient accumulation uses deferred reduction (ALGORITHMS.md section 0): each micro-batch's loss is a `LossTerm`
`(total, denom)`; the step sums the gradients of the *totals* and the denominators over micro-batches, then divides
once. Because no micro-batch divides by its own denominator, a micro-batched step equals the full-batch step up to
float summation order.

A step whose loss or gradient is not finite leaves parameters and optimiser state unchanged and counts the skip; the
trainer loop stops after `nonfinite_max_in_a_row` skips in a row (a single bad batch should not end a long run, a
diverged run should not spin).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from nsa_jax import parallel
from nsa_jax.losses import LossTerm
from nsa_jax.losses.types import safe_div
from nsa_jax.train.core.state import TrainState

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]
# loss_fn(model, micro_batch, rng) -> (LossTerm, metrics); metric values are LossTerms or scalars, combined over
# micro-batches by their name (see `_reduce_metrics`: *_max, *_min, token counts, token-weighted means).
LossFn = Callable[[nnx.Module, Batch, jax.Array], tuple[LossTerm, dict[str, Any]]]


def micro_batches(config: ml_collections.ConfigDict, mesh: Mesh | None = None, group_size: int = 1) -> int:
    """How many micro-batches a global batch is split into (`micro_batch_size` 0 means no accumulation). Checks
    that each micro-batch holds whole groups of `group_size` and, with a mesh, splits evenly over the data-parallel
    devices."""
    mb = config.micro_batch_size or config.batch_size
    if config.batch_size % mb:
        raise ValueError(f"batch_size={config.batch_size} is not a multiple of micro_batch_size={mb}")
    if mb % group_size:
        raise ValueError(f"micro_batch_size={mb} must hold whole groups of group_size={group_size}")
    shards = 1 if mesh is None else int(np.prod([mesh.shape[a] for a in parallel.BATCH_AXES if a in mesh.shape]))
    if mb % shards:
        raise ValueError(
            f"micro-batches of {mb} sequences do not split over the {shards} data-parallel devices "
            f"(mesh data x fsdp); make batch_size / micro_batch_size a multiple of {shards}"
        )
    return config.batch_size // mb


def device_batch(host: dict[str, np.ndarray], shardings: dict[str, jax.sharding.Sharding]) -> dict[str, jax.Array]:
    """Global arrays from the host batch: each process places only the shards its own devices hold."""
    return {k: parallel.global_array(v, shardings[k]) for k, v in host.items()}


def split_micro_batches(batch: Batch, micro_batches: int, group_size: int = 1) -> Batch:
    """[B, ...] -> [M, B/M, ...] with micro-batch m holding groups m, m+M, m+2M, ... (each group's G rows
    contiguous and in order; with G = 1, rows m, m+M, ...).

    Strided over groups rather than contiguous so that, with B sharded in contiguous blocks over the data axes,
    every device holds rows of every micro-batch and all devices work on each one.
    """

    def one(x: jax.Array) -> jax.Array:
        b = x.shape[0]
        if b % (micro_batches * group_size):
            raise ValueError(
                f"batch of {b} rows does not split into {micro_batches} micro-batches of whole groups of {group_size}"
            )
        q = b // (micro_batches * group_size)  # groups per micro-batch
        x = parallel.split_rows(x, (q, micro_batches, group_size)).swapaxes(0, 1)  # [M, q, G, ...]
        return x.reshape(micro_batches, q * group_size, *x.shape[3:])

    return jax.tree.map(one, batch)


def _reduce_metrics(stacked: dict[str, Any]) -> Metrics:
    """Per-micro-batch metrics [M] -> the value over the whole batch, by the metric's kind:

    - a LossTerm: totals and denominators summed, then divided (exact);
    - a name ending in `_max` / `_min`: max / min over the micro-batches that hold tokens (exact);
    - a token count (`tokens` or a name ending in `_tokens`): summed;
    - anything else is a per-token mean: weighted by the micro-batch's `tokens` count when the loss reports one
      (exact for means; a micro-batch with no tokens, e.g. all its groups filtered out, counts for nothing),
      otherwise a plain mean; a `<x>_std` next to its `<x>_mean` is pooled (exact for population stds).
    """
    weights = None
    if "tokens" in stacked and not isinstance(stacked["tokens"], LossTerm):
        weights = jnp.asarray(stacked["tokens"], jnp.float32)  # [M]
    holds = weights > 0 if weights is not None else None
    out = {}
    for name, value in stacked.items():
        if isinstance(value, LossTerm):
            out[name] = LossTerm(jnp.sum(value.total), jnp.sum(value.denom)).value
            continue
        value = jnp.asarray(value, jnp.float32)
        if name.endswith(("_max", "_min")):
            pick, fill = (jnp.max, -jnp.inf) if name.endswith("_max") else (jnp.min, jnp.inf)
            picked = pick(value if holds is None else jnp.where(holds, value, fill))
            out[name] = jnp.where(jnp.isfinite(picked), picked, 0.0)  # 0 when no micro-batch holds tokens
        elif name == "tokens" or name.endswith("_tokens"):
            out[name] = jnp.sum(value)
        elif weights is not None and name.endswith("_std") and name[:-4] + "_mean" in stacked:
            # Pooled (population) std from each micro-batch's mean, std and token count: exact.
            mean = jnp.asarray(stacked[name[:-4] + "_mean"], jnp.float32)
            second = safe_div(jnp.sum((value**2 + mean**2) * weights), jnp.sum(weights))
            first = safe_div(jnp.sum(mean * weights), jnp.sum(weights))
            out[name] = jnp.sqrt(jnp.maximum(second - first**2, 0.0))
        elif weights is not None:
            out[name] = safe_div(jnp.sum(value * weights), jnp.sum(weights))
        else:
            out[name] = jnp.mean(value)
    return out


def make_train_step(
    graphdef: nnx.GraphDef,
    loss_fn: LossFn,
    tx: optax.GradientTransformation,
    *,
    micro_batches: int = 1,
    group_size: int = 1,
    schedule: optax.Schedule | None = None,
) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
    """The (unjitted) pure step; `jit_train_step` wraps it with shardings and donation. Each of the
    `micro_batches` micro-batches holds whole groups of `group_size` rows (see `split_micro_batches`)."""

    def micro_step(params, micro_batch: Batch, rng: jax.Array):
        def total(p):
            term, metrics = loss_fn(nnx.merge(graphdef, p), micro_batch, rng)
            return term.total, (term, metrics)

        (_, aux), grads = jax.value_and_grad(total, has_aux=True)(params)
        return grads, aux

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        rng, step_rng = jax.random.split(state.rng)
        micro = split_micro_batches(batch, micro_batches, group_size)
        zeros = jax.tree.map(jnp.zeros_like, state.params)

        def body(grad_sum, xs):
            index, micro_batch = xs
            grads, aux = micro_step(state.params, micro_batch, jax.random.fold_in(step_rng, index))
            return jax.tree.map(jnp.add, grad_sum, grads), aux

        grad_sum, (terms, metrics) = jax.lax.scan(body, zeros, (jnp.arange(micro_batches), micro))
        term = LossTerm(jnp.sum(terms.total), jnp.sum(terms.denom))
        scale = jnp.where(term.denom != 0, 1.0 / jnp.where(term.denom != 0, term.denom, 1.0), 0.0)
        grads = jax.tree.map(lambda g: (g * scale).astype(g.dtype), grad_sum)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(term.value) & jnp.isfinite(grad_norm)

        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        keep = lambda new, old: jnp.where(finite, new, old)
        in_a_row = jnp.where(finite, 0, state.nonfinite_in_a_row + 1)
        new_state = TrainState(
            step=state.step + 1,
            params=jax.tree.map(keep, params, state.params),
            opt_state=jax.tree.map(keep, opt_state, state.opt_state),
            rng=rng,
            nonfinite_in_a_row=in_a_row,
            nonfinite_total=state.nonfinite_total + (~finite).astype(jnp.int32),
        )
        out = {
            "loss": term.value,
            "grad_norm": grad_norm,
            "skipped_nonfinite": (~finite).astype(jnp.float32),
            "nonfinite_in_a_row": in_a_row,
            **_reduce_metrics(metrics),
        }
        if schedule is not None:
            # The schedule advances only on applied updates (the optimiser's own count), not on skipped steps.
            out["learning_rate"] = schedule(state.step - state.nonfinite_total)
        return new_state, out

    return step


def jit_train_step(
    step: Callable[[TrainState, Batch], tuple[TrainState, Metrics]],
    state_shardings: TrainState,
    batch_shardings: dict[str, jax.sharding.Sharding],
) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
    """`jax.jit` with explicit in/out shardings (pjit semantics) and the state donated (updated in place)."""
    replicated = jax.sharding.NamedSharding(jax.tree.leaves(state_shardings)[0].mesh, jax.sharding.PartitionSpec())
    return jax.jit(
        step,
        in_shardings=(state_shardings, batch_shardings),
        out_shardings=(state_shardings, replicated),
        donate_argnums=(0,),
    )
