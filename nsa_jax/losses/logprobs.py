"""Token log-probs from final hidden states and the unembedding, without materialising ``[B, T, V]`` logits.

At LLM vocabulary sizes the float32 logits dominate training memory (``B*T = 16384`` rows times ``V = 151936`` is
about 10 GB). Only ``chunk_size * V``-sized tiles of logits ever exist:

- forward: the positions are cut into chunks of about ``chunk_size`` rows of logits (every batch row's next few
  positions) and mapped over (``lax.map``); each chunk keeps only its log-sum-exp and target logit;
- backward (a ``custom_vjp`` that recomputes the logits instead of storing them): the vocabulary is cut into
  slices holding the same number of logits (whole multiples of 128 columns), and each slice writes its own columns
  of the unembedding gradient exactly once. Slicing the vocabulary rather than the rows means the ``[d, V]``
  gradient is never accumulated across chunks: no float32 ``[d, V]`` accumulator and no precision lost summing bf16
  partial gradients.
"""

from functools import partial

import jax
import jax.numpy as jnp
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P

_SLICE_QUANTUM = 128  # the backward's vocabulary slices are a multiple of this many columns wide


def _row_chunks(hidden: jax.Array, ids: jax.Array, unembed: jax.Array, temperature: jax.Array, chunk_size: int):
    """Log-sum-exp and target logit of every token, ``([B, T], [B, T])`` float32, a chunk of ``c`` tokens of every
    row at a time (``c = chunk_size // B``, at least 1, so a chunk holds about ``chunk_size`` rows of logits).

    The loop runs over positions, never over the batch: a batch sharded over devices stays sharded inside every
    chunk, so each device computes only its own rows' logits (flattening ``B*T`` and looping over chunks of it
    would put the loop on the sharded axis and make XLA gather every row onto every device)."""
    b, t, d = hidden.shape
    c = max(1, min(t, chunk_size // b))
    pad = (-t) % c
    chunks = jnp.moveaxis(jnp.pad(hidden, ((0, 0), (0, pad), (0, 0))).reshape(b, -1, c, d), 1, 0)  # [C, B, c, d]
    chunk_ids = jnp.moveaxis(jnp.pad(ids, ((0, 0), (0, pad))).reshape(b, -1, c), 1, 0)  # [C, B, c]

    def one_chunk(chunk: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        h, y = chunk
        logits = jnp.einsum("bcd,dv->bcv", h, unembed, preferred_element_type=jnp.float32) / temperature
        picked = jnp.take_along_axis(logits, y[..., None], axis=-1)[..., 0]
        return jax.nn.logsumexp(logits, axis=-1), picked

    lse, picked = jax.lax.map(one_chunk, (chunks, chunk_ids))  # [C, B, c] each
    unchunk = lambda x: jnp.moveaxis(x, 0, 1).reshape(b, -1)[:, :t]
    return unchunk(lse), unchunk(picked)


def _column_slice(x: jax.Array, start: jax.Array, width: int) -> jax.Array:
    """``x[:, start:start + width]``. A 16-bit float matrix is sliced as uint16 bits: XLA:CPU computes a bf16
    dynamic-slice in float32 and hoists the conversion of the whole ``[d, V]`` matrix out of the loop, a float32
    copy (0.6 GB at d = 1024, V = 151936). The bit view costs at most one 16-bit copy instead."""
    if jnp.issubdtype(x.dtype, jnp.floating) and x.dtype.itemsize == 2:
        bits = jax.lax.bitcast_convert_type(x, jnp.uint16)
        return jax.lax.bitcast_convert_type(jax.lax.dynamic_slice_in_dim(bits, start, width, axis=1), x.dtype)
    return jax.lax.dynamic_slice_in_dim(x, start, width, axis=1)


@partial(jax.custom_vjp, nondiff_argnums=(4,))
def _chunked_logprobs(hidden, unembed, ids, temperature, chunk_size):
    lse, picked = _row_chunks(hidden, ids, unembed, temperature, chunk_size)
    return picked - lse


def _chunked_logprobs_fwd(hidden, unembed, ids, temperature, chunk_size):
    lse, picked = _row_chunks(hidden, ids, unembed, temperature, chunk_size)
    return picked - lse, (hidden, unembed, ids, temperature, lse)


def _chunked_logprobs_bwd(chunk_size, residuals, g):
    """``d logp_i / d logits_iv = (onehot_iv - softmax_iv) / temperature``, one vocabulary slice at a time, over
    every token at once (the rows stay where they are: each vocabulary slice's unembedding gradient is a sum over
    the rows, the data-parallel all-reduce)."""
    hidden, unembed, ids, temperature, lse = residuals
    shape = hidden.shape
    rows, ids, lse, g = hidden.reshape(-1, shape[-1]), ids.reshape(-1), lse.reshape(-1), g.reshape(-1)
    n, d = rows.shape
    vocab = unembed.shape[1]
    # A slice holds as many logits as a forward chunk, its width rounded up to a multiple of 128 columns (a TPU
    # lane tile; at a small vocabulary and many rows the plain quotient gave slices of a few columns, 20 skinny
    # matmuls where one would do: the miniature's update, V = 100 and 10k rows, ran 1.05x faster with one slice);
    # the last slice is shifted left to end at V (so no padded copy of the unembedding is made) and its overlap
    # with the previous slice is kept out of the hidden gradient.
    columns = -(-chunk_size * vocab // n)  # a chunk's worth of logits over the n rows (ceil, at least 1)
    width = min(vocab, -(-columns // _SLICE_QUANTUM) * _SLICE_QUANTUM)
    n_slices = -(-vocab // width)
    cols = jnp.arange(width)

    def one_slice(i: jax.Array, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        d_rows, d_unembed = carry
        start = jnp.minimum(i * width, vocab - width)
        w = _column_slice(unembed, start, width)  # [d, width]
        logits = jnp.dot(rows, w, preferred_element_type=jnp.float32) / temperature  # [N, width]
        onehot = (ids[:, None] == start + cols).astype(jnp.float32)
        d_logits = g[:, None] * (onehot - jnp.exp(logits - lse[:, None])) / temperature  # [N, width]
        d_w = jax.lax.dot_general(rows, d_logits, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)
        d_w = d_w.astype(unembed.dtype)
        d_unembed = jax.lax.dynamic_update_slice_in_dim(d_unembed, d_w, start, axis=1)
        fresh = start + cols >= i * width  # columns no earlier slice has counted
        d_keep = jnp.where(fresh, d_logits, 0.0)
        d_rows = d_rows + jax.lax.dot_general(d_keep, w, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
        return d_rows, d_unembed

    init = (jnp.zeros((n, d), jnp.float32), jnp.zeros_like(unembed))
    d_rows, d_unembed = jax.lax.fori_loop(0, n_slices, one_slice, init)
    return d_rows.astype(rows.dtype).reshape(shape), d_unembed, None, jnp.zeros_like(temperature)


_chunked_logprobs.defvjp(_chunked_logprobs_fwd, _chunked_logprobs_bwd)


def token_logprobs(
    hidden: jax.Array,
    unembed: jax.Array,
    targets: jax.Array,
    *,
    chunk_size: int,
    temperature: float = 1.0,
) -> jax.Array:
    """``log softmax(hidden @ unembed / temperature)[target]`` per token, ``[B, T]`` float32.

    Equal to the unchunked ``jax.nn.log_softmax(jnp.einsum("btd,dv->btv", hidden, unembed) / temperature)``
    gathered at ``targets``, with the same gradients with respect to ``hidden`` and ``unembed`` (returned in their
    own dtypes); matmuls accumulate in float32 whatever the input dtype. Peak temporary memory is
    ``O(chunk_size * V + B*T*d)`` instead of ``O(B*T*V)``.

    Args:
      hidden: ``[B, T, d]`` final hidden states (after the final norm), any float dtype.
      unembed: ``[d, V]`` unembedding (the transposed embedding when tied).
      targets: ``[B, T]`` int token ids whose log-prob is wanted (the next tokens).
      chunk_size: rows of logits per forward chunk (required): ``chunk_size // B`` positions of every row at a time
        (at least one, so a batch of more than ``chunk_size`` rows has ``B`` rows a chunk; need not divide ``T``:
        the last chunk is padded); the backward pass uses vocabulary slices with the same number of logits,
        rounded up to a multiple of 128 columns (so at most ``127 * B*T`` more).
        Chunks run over positions, so a batch sharded over devices is scored where it lies (data parallel). At ``V ~ 150k`` and
        ``B*T = 16k``, 256 or 512 keep the compiled temporary memory of value and gradient under 1/8 of the float32
        logits (``benchmarks/token_logprobs_memory.py``).
      temperature: logits are divided by it before the softmax (default 1.0), to score samples drawn at that
        temperature. Not differentiated.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size} must be a positive number of rows")
    temperature = jnp.asarray(temperature, jnp.float32)
    sharding = jax.typeof(hidden).sharding
    if AxisType.Explicit not in sharding.mesh.axis_types:
        return _flat_logprobs(hidden, unembed, targets, temperature, chunk_size)
    # Explicit mesh (shardings in the types): each device scores its own rows, chunked as above, against the whole
    # unembedding (gathered as FSDP gathers a weight). The custom VJP gives each device its rows' share of the
    # unembedding's gradient; without the varying-axes check, shard_map's transpose sums the shares over the devices.
    rows = P(sharding.spec[0])
    local = jax.shard_map(
        partial(_flat_logprobs, chunk_size=chunk_size), in_specs=(rows, P(), rows, P()), out_specs=rows, check_vma=False
    )
    # Rows only: a hidden dimension left split (over the batch axes the rows could not use, `parallel.split_rows`)
    # is gathered, a no-op otherwise.
    hidden = jax.sharding.reshard(hidden, P(sharding.spec[0], *[None] * (hidden.ndim - 1)))
    return local(hidden, jax.sharding.reshard(unembed, P()), targets, temperature)


def _flat_logprobs(
    hidden: jax.Array, unembed: jax.Array, targets: jax.Array, temperature: jax.Array, chunk_size: int
) -> jax.Array:
    """token_logprobs of hidden [B, T, d], targets [B, T] -> [B, T]."""
    return _chunked_logprobs(hidden, unembed, targets, temperature, chunk_size)
