"""Aggregation of a per-token loss into a deferred-reduction LossTerm (ALGORITHMS.md section 0).

Each mode returns ``(total, denom)`` such that summing over micro-batches of whole sequences (or over data-parallel
shards) and dividing once equals the full-batch value.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from nsa_jax.losses.types import LossTerm, f32, lookup, safe_div


def _token_mean(loss: jax.Array, mask: jax.Array, max_len: int) -> LossTerm:
    del max_len
    return LossTerm(jnp.sum(loss * mask), jnp.sum(mask))


def _seq_mean_token_mean(loss: jax.Array, mask: jax.Array, max_len: int) -> LossTerm:
    del max_len
    lengths = jnp.sum(mask, axis=-1)  # [B]
    per_seq = safe_div(jnp.sum(loss * mask, axis=-1), lengths)  # [B]
    # Sequences without any response token (padding rows) are not counted, so padding a batch changes nothing.
    return LossTerm(jnp.sum(per_seq), jnp.sum((lengths > 0).astype(jnp.float32)))


def _seq_mean_token_sum_norm(loss: jax.Array, mask: jax.Array, max_len: int) -> LossTerm:
    return LossTerm(jnp.sum(loss * mask) / max_len, jnp.float32(mask.shape[0]))


AGGREGATIONS: dict[str, Callable[[jax.Array, jax.Array, int], LossTerm]] = {
    "token-mean": _token_mean,
    "seq-mean-token-mean": _seq_mean_token_mean,
    "seq-mean-token-sum-norm": _seq_mean_token_sum_norm,
}


def aggregate(per_token: jax.Array, mask: jax.Array, mode: str, *, max_len: int | None = None) -> LossTerm:
    """Reduce a per-token loss ``l [B, T]`` over response tokens ``mask [B, T]`` to a LossTerm.

    Modes (``mode``, no default: the caller chooses, see each loss for its paper's choice):

    - ``"token-mean"`` (DAPO, arXiv 2503.14476, eq. 8): ``sum(l*mask) / sum(mask)``;
      LossTerm ``(sum(l*mask), sum(mask))``.
    - ``"seq-mean-token-mean"`` (original GRPO, arXiv 2402.03300, eq. 3):
      ``mean_i( sum_t(l*mask)_i / sum_t(mask)_i )``; LossTerm ``(sum of per-sequence means, number of sequences)``,
      where sequences with no response token are not counted.
    - ``"seq-mean-token-sum-norm"`` (Dr.GRPO, arXiv 2503.20783, section 3.2): ``sum(l*mask) / (B * L_max)``;
      LossTerm ``(sum(l*mask) / L_max, B)``.

    Args:
      per_token: ``[B, T]`` loss per token (any float dtype; reduced in float32).
      mask: ``[B, T]`` 1 on response tokens, 0 elsewhere.
      mode: one of ``AGGREGATIONS``; ValueError otherwise.
      max_len: ``L_max`` for ``"seq-mean-token-sum-norm"``, the constant maximum generation length. Default None
        uses ``T``, the padded length (as verl does); pass it explicitly when batches are trimmed to their longest
        response, or the normaliser changes from batch to batch.
    """
    fn = lookup(AGGREGATIONS, mode, "agg")
    if max_len is not None and max_len <= 0:
        raise ValueError(f"max_len={max_len} must be positive")
    mask = f32(mask)
    return fn(f32(per_token), mask, mask.shape[-1] if max_len is None else max_len)
