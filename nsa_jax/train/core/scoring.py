"""Scoring: token and sequence log-probs of a batch under any parameters, without gradient.

One module serves every trainer: the RL update's `logp_old` pass and the frozen reference (`logp_ref`) now; DPO's
reference sums and the judges next. Log-probs come from the final hidden states and the unembedding through
`losses.token_logprobs`, so `[B, T, V]` float32 logits never exist.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from nsa_jax import losses, models, parallel
from nsa_jax.train.core.step import Batch


def sequence_logprobs(model: nnx.Module, batch: Batch, *, chunk_size: int, group_size: int = 1) -> jax.Array:
    """log pi(token_t | tokens_<t) for every column of `input_ids`, [B, T] float32 (column 0 is 0).

    A batch with the groups' prompts set apart (`rollouts.prompt_apart`: per-row `prompt_ids` / `prompt_mask`, the
    per-token arrays holding the responses) is scored with each prompt computed once for its `group_size` rows
    (`Transformer.hidden_states_after_prompt`); there column 0 is the first response token, predicted from the
    prompt's last column, and the values equal those of the whole rows within float tolerance. Such a batch may
    also carry `packed_width` (`[B, c]`, only its width c is read): the responses' real tokens then run the
    position-wise layers and the vocabulary projection packed (`models.Packing`, blocks of c slots per row over
    the batch's data-parallel shards), and the log-probs are 0 at the padding; NaN everywhere if a block holds
    more than its slots (`models.packed_width` picks a c that holds them). Responses must then fill their rows
    from column 0 (right-padded), as a rollout's do."""
    if "prompt_ids" in batch:
        first = lambda x: x.reshape(-1, group_size, *x.shape[1:])[:, 0]  # one row per prompt
        ids, packing = batch["input_ids"], response_packing(batch)
        prompt_hidden, hidden = model.hidden_states_after_prompt(
            first(batch["prompt_ids"]), first(batch["prompt_mask"]), ids, batch["attention_mask"], packing
        )  # [B/G, P, d], [B, T, d] (packed: [D, N, d])
        last = jnp.repeat(prompt_hidden[:, -1:], group_size, axis=0)  # [B, 1, d]: predicts each row's column 0
        if packing is None:
            before = jnp.concatenate([last, hidden[:, :-1]], axis=1)
            return losses.token_logprobs(before, model.unembedding(), ids, chunk_size=chunk_size)
        # Packed, the token before slot j is slot j - 1, except at a row's column 0, which its prompt predicts.
        before = jnp.concatenate([hidden[:, :1], hidden[:, :-1]], axis=1)
        starts = packing.row_starts()  # [D, B/D]
        last = last.reshape(*starts.shape, last.shape[-1])
        before = jax.vmap(lambda h, at, x: h.at[at].set(x, mode="drop"))(before, starts, last)
        logp = losses.token_logprobs(before, model.unembedding(), packing.pack(ids), chunk_size=chunk_size)
        return jnp.where(packing.overflow, jnp.nan, packing.unpack(logp))
    hidden = model.hidden_states(batch["input_ids"], attention_mask=batch["attention_mask"])  # [B, T, d]
    logp = losses.token_logprobs(
        hidden[:, :-1], model.unembedding(), batch["input_ids"][:, 1:], chunk_size=chunk_size
    )  # [B, T-1]
    return jnp.pad(logp, ((0, 0), (1, 0)))


def response_packing(batch: Batch) -> models.Packing | None:
    """The `Packing` of a batch's tokens that its `packed_width` array asks for (blocks over the batch's
    data-parallel shards, each of `c` slots per row), or None without one."""
    if "packed_width" not in batch:
        return None
    mask = batch["attention_mask"]
    rows, width = mask.shape[0], batch["packed_width"].shape[1]
    blocks = parallel.batch_shards(getattr(jax.typeof(mask).sharding, "mesh", None), rows)
    return models.Packing.from_mask(mask, blocks, rows // blocks * width)


@functools.cache
def make_scorer(graphdef: nnx.GraphDef, *, chunk_size: int, group_size: int = 1) -> Callable[[Any, Batch], jax.Array]:
    """A jitted `(params, batch) -> logp * loss_mask [B, T]` without gradient. Cached per model graph, so runs
    (and the policy and its reference, which share a graph) share its compilation."""

    @jax.jit
    def score(params: Any, batch: Batch) -> jax.Array:
        model = nnx.merge(graphdef, params)
        logp = sequence_logprobs(model, batch, chunk_size=chunk_size, group_size=group_size)
        return jax.lax.stop_gradient(logp * batch["loss_mask"])

    return score


def score_tokens(
    graphdef: nnx.GraphDef,
    params: Any,
    tokens: Mapping[str, np.ndarray],
    *,
    mesh: Mesh,
    rows: int,
    chunk_size: int,
    group_size: int = 1,
) -> np.ndarray:
    """Host log-probs `[B, T]` (0 off `loss_mask`) of `params` on `input_ids` / `attention_mask` / `loss_mask`,
    `rows` rows at a time (the unit the train step shards over the devices; a last partial chunk is padded with
    rows that carry no loss, so every call has one shape). With `prompt_ids` / `prompt_mask` among `tokens` (a
    batch whose prompts are set apart), each prompt is computed once for its `group_size` rows; `rows` is then a
    multiple of `group_size`; with `packed_width` too, the responses run packed (`sequence_logprobs`)."""
    score = make_scorer(graphdef, chunk_size=chunk_size, group_size=group_size)
    names = ("input_ids", "attention_mask", "loss_mask")
    if "prompt_ids" in tokens:
        names += ("prompt_ids", "prompt_mask")
    if "packed_width" in tokens:  # its width is the packing's slots per row of each `rows`-row call
        names += ("packed_width",)

    def one(p: Any, *chunk: jax.Array) -> jax.Array:
        return score(p, dict(zip(names, chunk, strict=True)))

    return parallel.map_rows(one, params, [tokens[k] for k in names], rows=rows, mesh=mesh)
