"""Batched generation: prefill, then `lax.while_loop`s that decode one token per step, in segments.

The model is split once per call (`nnx.split`): the graph definition is a static argument of the jitted programs,
the parameters are ordinary inputs and keep whatever sharding they carry. Every shape is static: the prompt is
left-padded to its length bucket and the output buffers have the generation bucket's length. Decoding runs in
segments (`Buckets.segment_ends`): the KV cache holds the prompt and the slots up to the current segment's end, so
each step attends over the filled part of the cache instead of all of it, and is grown between segments. With n
samples per prompt the prompt's keys and values are stored once per group (`models.PrefixKV`) and each sample's
own slots beside them; every step reads a prompt's KV once for its n rows instead of n copies (once rows are
dropped, the kept ones take copies of their prompts'). Between segments the host reads which rows have stopped;
when the live rows fit in half the batch, the finished rows are written to the output and dropped, so the long
tail of a few long responses decodes as a small batch; growing and cutting the cache go one array at a time, so the
old and new cache are never in memory together whole. Inside a segment the number of steps actually run (up to its
end, or fewer when every row has stopped) is a traced scalar.
With the batch split over the devices of a mesh with Auto axes, each device runs that loop on its own rows and
stops when they have (`jax.shard_map`): no step waits for the other devices.
A run therefore compiles one prefill and one decode program per (prompt bucket, segment, batch size, sampling
switches) and no more; a generation bucket up to `Buckets.cache_block` (64) tokens is a single segment.

Each step keeps only the [R, V] logits of the newest token; only the stop flags leave the device between segments.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from nsa_jax import parallel
from nsa_jax.models import KVCache, PrefixKV, Transformer, positions_from_mask
from nsa_jax.models.layers import explicit_spec
from nsa_jax.parallel import BATCH_AXES
from nsa_jax.parallel.mesh import axes_of
from nsa_jax.sampling.buckets import Buckets, left_pad
from nsa_jax.sampling.filters import SamplingParams, sample_tokens


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SampleOutput:
    """Generated responses, group-major: rows q*n .. q*n+n-1 are the n samples of prompt q.

    tokens [B*n, N] int32: the response (N = max_new_tokens); after a row's stop token, `pad_id`.
    mask [B*n, N] int32: 1 on response tokens, the stop token included; 0 after it.
    logprobs [B*n, N] float32: log-prob of each token under the distribution it was sampled from (after
        temperature, top-k, top-p, min-p; 0 with greedy, a point mass); 0 where mask is 0.
    policy_logprobs [B*n, N] float32: log-prob of the same token under the untruncated policy at temperature 1.
    lengths [B*n] int32: number of response tokens (sum of mask).
    stopped [B*n] bool: the row ended on a stop token (False: cut at max_new_tokens).
    prompt_tokens, prompt_mask [B*n, Pb] int32: the left-padded prompts as the model saw them (Pb the prompt
        bucket), so `concat(prompt_tokens, tokens)` with `concat(prompt_mask, mask)` is a teacher-forcing batch.
    """

    tokens: jax.Array
    mask: jax.Array
    logprobs: jax.Array
    policy_logprobs: jax.Array
    lengths: jax.Array
    stopped: jax.Array
    prompt_tokens: jax.Array
    prompt_mask: jax.Array


@dataclasses.dataclass(frozen=True)
class _Program:
    """Everything static about one generation (the jit cache key of its programs besides input shapes)."""

    graphdef: nnx.GraphDef
    gen_len: int  # generation bucket: length of the output buffers
    n: int
    greedy: bool
    truncate: bool  # any of top-k / top-p / min-p is on
    batch_sharding: NamedSharding | None  # of a [B, ...] array; None when not under a mesh
    own_loops: bool  # each device of the batch axes decodes its rows in a loop of its own (see _decode)


# The decode state between programs. Per-row arrays (rows on axis 0, the cache's too) are split over the batch
# axes; "row" is each row's index in the whole output.
_PER_ROW = ("row", "next_position", "done", "tokens", "mask", "logprobs", "policy_logprobs")
_OUTPUT = ("tokens", "mask", "logprobs", "policy_logprobs", "done")
_NO_ROW = np.iinfo(np.int32).max  # the row index of a padding row: out of range, so never written


def _split_rows(x: jax.Array, program: _Program) -> jax.Array:
    """x [R, ...] re-sharded over the batch axes along its rows when under a mesh with Auto axes (XLA propagates the
    rest); x itself without a mesh or on Explicit axes, where the sharding is already part of x's type."""
    if program.batch_sharding is None or explicit_spec(x) is not None:
        return x
    return jax.lax.with_sharding_constraint(
        x, NamedSharding(program.batch_sharding.mesh, P(*program.batch_sharding.spec[:1]))
    )


def _repeat_rows(x: jax.Array, n: int, program: _Program) -> jax.Array:
    """Each row of x [B, ...] n times in a row (group-major), split over the batch axes when under a mesh."""
    spec = explicit_spec(x)
    if spec is not None:  # Explicit mesh: x is split over the batch axes already, and its copies are split alike
        return jnp.repeat(x, n, axis=0, out_sharding=spec) if n > 1 else x
    return _split_rows(jnp.repeat(x, n, axis=0) if n > 1 else x, program)


def _emit(program: _Program, carry: dict, logits: jax.Array, stop_ids, pad_id, key, params) -> dict:
    """Samples response token `step` from logits [R, V] and writes it into the buffers. A row's key is derived from
    its index in the whole output and the step, so its samples do not depend on the rows decoded beside it."""
    step = carry["step"]
    row_keys = jax.vmap(jax.random.fold_in, (None, 0))(key, carry["row"])
    keys = jax.vmap(jax.random.fold_in, (0, None))(row_keys, step)
    spec = explicit_spec(carry["done"])
    if spec is not None:  # Explicit mesh: each device samples its rows over the whole vocabulary
        logits = jax.sharding.reshard(logits, P(spec[0]))
    token, logprob, policy_logprob = sample_tokens(
        keys, logits, params, greedy=program.greedy, truncate=program.truncate
    )
    live = ~carry["done"]  # [R]
    token = jnp.where(live, token, pad_id)
    columns = {
        "tokens": token,
        "mask": live.astype(jnp.int32),
        "logprobs": jnp.where(live, logprob, 0.0),
        "policy_logprobs": jnp.where(live, policy_logprob, 0.0),
    }
    out = dict(carry)
    for name, column in columns.items():
        out[name] = jax.lax.dynamic_update_slice(carry[name], column[:, None], (0, step))
    out["done"] = carry["done"] | (live & jnp.isin(token, stop_ids))
    out["step"] = step + 1
    return out


@functools.partial(jax.jit, static_argnames=("program", "slots"))
def _prefill(program: _Program, slots: int, state: nnx.State, ids, mask, stop_ids, pad_id, key, params):
    """Prefills each prompt once, copies its last logits to its n samples and samples response token 0. With n > 1
    the prompt's KV is kept once, as the cache's shared prefix, beside `slots` empty slots per sample; with n = 1
    the prompt and the slots are one cache. Returns (decode state, prompt ids and mask repeated per sample)."""
    model: Transformer = nnx.merge(program.graphdef, state)
    batch, prompt_len = ids.shape
    rows, gen_len = batch * program.n, program.gen_len
    # On a mesh with Explicit axes every per-row array is created split over the batch axes, like ids, since an
    # update must match the sharding of the buffer it writes into (and a loop carry keeps its type). None elsewhere.
    spec = explicit_spec(ids)
    row_spec = None if spec is None else P(spec[0])
    row_ids = _repeat_rows(ids, program.n, program)
    shared = program.n > 1
    cache = model.init_cache(batch, prompt_len + (0 if shared else slots), like=ids)
    hidden, cache = model.forward(ids, positions_from_mask(mask), mask, cache)
    logits = _repeat_rows(model.logits(hidden[:, -1]), program.n, program)  # [B*n, V]
    if shared:
        prefix = PrefixKV(k=cache.k, v=cache.v, valid=cache.valid)
        cache = dataclasses.replace(model.init_cache(rows, slots, like=row_ids), prefix=prefix)
    carry = {
        "step": jnp.zeros((), jnp.int32),
        "cache": cache,
        "row": jnp.arange(rows, dtype=jnp.int32, out_sharding=row_spec),
        "next_position": _repeat_rows(jnp.sum(mask, axis=1), program.n, program),  # position of response token 0
        "done": jnp.zeros((rows,), bool, out_sharding=row_spec),  # the row has emitted a stop token
        "tokens": jnp.full((rows, gen_len), pad_id, jnp.int32, out_sharding=row_spec),
        "mask": jnp.zeros((rows, gen_len), jnp.int32, out_sharding=row_spec),
        "logprobs": jnp.zeros((rows, gen_len), jnp.float32, out_sharding=row_spec),
        "policy_logprobs": jnp.zeros((rows, gen_len), jnp.float32, out_sharding=row_spec),
    }
    carry = _emit(program, carry, logits, stop_ids, pad_id, key, params)
    return carry, row_ids, _repeat_rows(mask, program.n, program)


@functools.partial(jax.jit, static_argnames="program", donate_argnames="carry")
def _decode(program: _Program, state: nnx.State, carry: dict, stop_ids, pad_id, end, key, params) -> dict:
    """Decodes one token per step until response length `end` (a traced scalar) or until every row has stopped,
    attending over the carry's cache as allocated (the prompt and the tokens up to this segment's end).

    With `program.own_loops` each device of the batch axes runs the loop on its own rows (`jax.shard_map`, manual
    over those axes), stopping when its rows have: one loop over the whole batch tests every step whether all rows
    have stopped, an all-reduce that holds the devices in step with each other (and XLA added an all-gather and an
    all-to-all per step for the sharded embedding's lookup). Each device holds the whole model for the segment, as
    XLA's hoisting of the weights' all-gathers out of the loop had made it anyway. A device that stopped early has
    written pads to its rows' remaining columns already, so the outputs are the same; the step count and cache
    index leave the loop as their maximum over the devices (one all-reduce per segment)."""
    if not program.own_loops:
        return _decode_loop(program, state, carry, stop_ids, pad_id, end, key, params)
    axes = tuple(axes_of(program.batch_sharding.spec[0]))

    def own_loop(state: nnx.State, carry: dict) -> dict:
        out = _decode_loop(program, state, carry, stop_ids, pad_id, end, key, params)
        cache = dataclasses.replace(out["cache"], index=jax.lax.pmax(out["cache"].index, axes))
        return {**out, "step": jax.lax.pmax(out["step"], axes), "cache": cache}

    rows = P(program.batch_sharding.spec[0])  # every array of the carry but the scalars has its rows on axis 0
    specs = jax.tree.map(lambda x: rows if x.ndim else P(), carry)
    mapped = jax.shard_map(
        own_loop, mesh=program.batch_sharding.mesh, in_specs=(P(), specs), out_specs=specs, axis_names=set(axes)
    )
    return mapped(state, carry)


def _decode_loop(program: _Program, state: nnx.State, carry: dict, stop_ids, pad_id, end, key, params) -> dict:
    """`_decode`'s loop over the rows of `carry` (all of them, or one device's)."""
    model: Transformer = nnx.merge(program.graphdef, state)

    def keep_going(carry: dict) -> jax.Array:
        return (carry["step"] < end) & ~jnp.all(carry["done"])

    def decode_step(carry: dict) -> dict:
        last = jax.lax.dynamic_slice_in_dim(carry["tokens"], carry["step"] - 1, 1, axis=1)  # [R, 1]
        positions = (carry["next_position"] + carry["step"] - 1)[:, None]  # [R, 1]
        hidden, cache = model.forward(last, positions, jnp.ones_like(last), carry["cache"])
        logits = model.logits(hidden[:, 0])
        return _emit(program, {**carry, "cache": cache}, logits, stop_ids, pad_id, key, params)

    return jax.lax.while_loop(keep_going, decode_step, carry)


def _one_at_a_time(fn, items: Sequence) -> tuple[jax.Array, ...]:
    """fn(item) (a compiled program) for each item (an array or a tuple of them) in turn, deleting the item's arrays
    once its result is ready.

    A cache's old and new versions then share memory one array at a time: growing or cutting the whole cache in one
    program held both whole, up to twice the cache at the last segment's growth (`benchmarks/sampler_memory.py`).
    Waiting for each result costs a host round trip per array, a few per layer and segment boundary."""
    out = []
    for item in items:
        y = fn(item)
        jax.block_until_ready(y)
        for x in jax.tree.leaves(item):
            x.delete()
        out.append(y)
    return tuple(out)


@functools.partial(jax.jit, static_argnames=("extra", "axis"))
def _pad_slots(x: jax.Array, extra: int, axis: int) -> jax.Array:
    """x with `extra` empty (zero) slots appended along its slot axis `axis`."""
    return jnp.pad(x, [(0, extra if i == axis else 0) for i in range(x.ndim)])


def _grow(carry: dict, span: int) -> dict:
    """The carry with its KV cache extended to `span` slots in all (the rows' own new slots empty and not valid;
    a shared prefix stays as it is), one array at a time: the old cache's arrays are deleted."""
    cache = carry["cache"]

    def pad(axis: int):
        return functools.partial(_pad_slots, extra=span - cache.span, axis=axis)

    grown = dataclasses.replace(
        cache, k=_one_at_a_time(pad(3), cache.k), v=_one_at_a_time(pad(2), cache.v), valid=pad(1)(cache.valid)
    )
    return {**carry, "cache": grown}


@functools.partial(jax.jit, donate_argnames="out")
def _write_rows(out: dict, carry: dict) -> dict:
    """The output buffers with the carry's rows written at their indices (padding rows are dropped)."""
    return {name: out[name].at[carry["row"]].set(carry[name], mode="drop") for name in _OUTPUT}


def _keep_rows(program: _Program, carry: dict, keep: jax.Array) -> dict:
    """The carry cut to rows `keep` [R'] (-1: a padding row, stopped and never written), the cache one array at a
    time: the old carry's cache arrays are deleted. A shared prompt prefix is copied into the kept rows, which no
    longer come in whole groups (the cut cache has none). Only a carry never cut has one, and there carry row i
    continues prompt i // n."""
    cache, prefix = carry["cache"], carry["cache"].prefix

    def parts(own, shared):  # each array's parts: (the rows' own,), or (its prompts' shared prefix, the rows' own)
        return [(x,) for x in own] if prefix is None else list(zip(shared, own, strict=True))

    def cut(axis: int):
        return functools.partial(_cut_cache, program, keep, axis=axis)

    kept = KVCache(
        k=_one_at_a_time(cut(3), parts(cache.k, prefix and prefix.k)),
        v=_one_at_a_time(cut(2), parts(cache.v, prefix and prefix.v)),
        valid=cut(1)((cache.valid,) if prefix is None else (prefix.valid, cache.valid)),
        index=cache.index + (0 if prefix is None else prefix.length),
    )
    return {**_cut_rows(program, {name: carry[name] for name in _PER_ROW}, keep), "cache": kept, "step": carry["step"]}


@functools.partial(jax.jit, static_argnames="program")
def _cut_rows(program: _Program, per_row: dict, keep: jax.Array) -> dict:
    """The per-row arrays (`_PER_ROW`) at rows `keep`; a padding row (-1) is stopped and has no output row."""
    pad = keep < 0
    cut = {name: _split_rows(x[jnp.maximum(keep, 0)], program) for name, x in per_row.items()}
    return {**cut, "done": cut["done"] | pad, "row": jnp.where(pad, _NO_ROW, cut["row"])}


@functools.partial(jax.jit, static_argnames=("program", "axis"))
def _cut_cache(program: _Program, keep: jax.Array, parts: tuple[jax.Array, ...], axis: int) -> jax.Array:
    """One cache array at rows `keep`. parts: (the rows' own [R, ...],), or (a shared prefix's array [B, ...], one
    row per prompt, the rows' own), joined along the slot axis `axis` so each kept row holds a copy of its prompt's
    slots before its own."""
    index = jnp.maximum(keep, 0)
    *shared, own = parts
    return _split_rows(jnp.concatenate([p[index // program.n] for p in shared] + [own[index]], axis=axis), program)


@functools.partial(jax.jit, static_argnames=("rows", "length"))
def _trim(out: SampleOutput, rows: int, length: int) -> SampleOutput:
    """Cuts the batch padding and the generation bucket off, in one small compiled program per output shape."""

    def cut_rows(x: jax.Array) -> jax.Array:
        if explicit_spec(x) is not None:  # Explicit mesh: the kept rows need not split evenly, so gather them first
            x = jax.sharding.reshard(x, NamedSharding(jax.typeof(x).sharding.mesh, P()))
        return x[:rows]

    out = jax.tree.map(cut_rows, out)
    response = ("tokens", "mask", "logprobs", "policy_logprobs")
    return dataclasses.replace(out, **{name: getattr(out, name)[:, :length] for name in response})


def _stop_array(stop_ids: set[int]) -> jax.Array:
    """[S] int32 stop ids padded with -1 (never a token) to a multiple of 8, so the count rarely changes the shape."""
    size = max(8, -(-len(stop_ids) // 8) * 8)
    return jnp.asarray(sorted(stop_ids) + [-1] * (size - len(stop_ids)), jnp.int32)


def _batch_sharding(mesh: Mesh | None, batch_axes: Sequence[str] | None) -> NamedSharding | None:
    """NamedSharding of a [B, ...] array split over the batch axes of the given or ambient mesh (None: no mesh)."""
    if mesh is None:
        mesh = jax.sharding.get_mesh()
    if mesh.empty:
        return None
    if batch_axes is None:
        batch_axes = tuple(a for a in BATCH_AXES if a in mesh.axis_names)
    missing = [a for a in batch_axes if a not in mesh.axis_names]
    if missing:
        raise ValueError(f"batch_axes {missing} are not axes of the mesh {mesh.axis_names}")
    return NamedSharding(mesh, P(tuple(batch_axes) or None))


def generate(
    model: Transformer,
    prompts: np.ndarray | jax.Array | Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    key: jax.Array,
    n: int = 1,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    min_p: float = 0.0,
    greedy: bool = False,
    stop_ids: Sequence[int] = (),
    attention_mask: np.ndarray | jax.Array | None = None,
    pad_id: int = 0,
    buckets: Buckets = Buckets(),  # noqa: B008  frozen dataclass, safe as a default
    mesh: Mesh | None = None,
    batch_axes: Sequence[str] | None = None,
    own_loops: bool | None = None,
) -> SampleOutput:
    """Samples `n` responses per prompt, group-major, stopping each row at EOS or any of `stop_ids`.

    prompts: [B, P] int32 left-padded with `attention_mask` (1 on real tokens), or a list of token lists.
    max_new_tokens: response length N; the buffers are rounded up to a bucket, the loop runs at most N steps.
    key: PRNG key; the result is a deterministic function of it (and unchanged by sharding or batch padding).
    temperature, top_k (0: off), top_p (1: off), min_p (0: off): filters applied in that order (see `filters`).
    greedy: argmax decoding; temperature 0 means greedy too.
    stop_ids: stop tokens on top of the model config's EOS ids; the stop token is part of the response.
    buckets: how prompt/generation lengths are rounded up, and the longest prompt accepted.
    mesh, batch_axes: split the batch over these mesh axes (default: the ambient mesh of `jax.set_mesh`, and
        its "data"/"fsdp" axes). The batch is padded to a multiple of their size and cut back afterwards.
        Parameters are used where they are: put them on the mesh first (e.g. `parallel.shard_model`).
        The mesh's axes may be Auto or Explicit (jax.make_mesh's default; the KV cache is then split like the batch).
    own_loops: with the batch split over an Auto mesh, each device decodes its rows in a loop of its own, the
        devices meeting only between segments (the default, None: when the batch is split over more than one
        device); False runs one loop over the whole batch, in step across the devices. The same results.
    Raises ValueError on a prompt longer than `buckets.max_prompt_len` (default the model's
    `max_position_embeddings`), an empty prompt, or out-of-range sampling settings.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not greedy and temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not 0.0 < top_p <= 1.0 or not 0.0 <= min_p <= 1.0 or top_k < 0:
        raise ValueError(f"need 0 < top_p <= 1, 0 <= min_p <= 1, top_k >= 0; got {top_p=}, {min_p=}, {top_k=}")
    cfg = model.config
    ids, mask = left_pad(prompts, attention_mask, pad_id=pad_id)
    limit = buckets.max_prompt_len or cfg.max_position_embeddings
    longest = int(mask.sum(axis=1).max())
    if longest > limit:
        raise ValueError(f"a prompt has {longest} tokens, more than the maximum prompt length {limit}")
    ids, mask = left_pad(ids, mask, width=buckets.round_up(longest, cap=limit), pad_id=pad_id)

    batch_sharding = _batch_sharding(mesh, batch_axes)
    batch, shards = ids.shape[0], 1
    if batch_sharding is not None:
        # Pad with copies of the first prompt so every device gets whole rows; they are cut off below.
        shards = math.prod(batch_sharding.mesh.shape[a] for a in axes_of(batch_sharding.spec[0]))
        extra = -batch % shards
        ids, mask = np.concatenate([ids, ids[:1].repeat(extra, 0)]), np.concatenate([mask, mask[:1].repeat(extra, 0)])

    greedy = greedy or temperature == 0
    truncate = not greedy and (0 < top_k < cfg.vocab_size or top_p < 1.0 or min_p > 0.0)
    graphdef, state = nnx.split(model)
    gen_len = buckets.round_up(max_new_tokens)
    # On a mesh with Explicit axes the model's layers name shardings by PartitionSpec, which needs the mesh in context.
    explicit = batch_sharding is not None and AxisType.Explicit in batch_sharding.mesh.axis_types
    if own_loops and explicit:
        raise ValueError("own_loops needs a mesh with Auto axes: on Explicit axes the batch decodes in one loop")
    own_loops = shards > 1 and not explicit if own_loops is None else own_loops and shards > 1
    program = _Program(graphdef, gen_len, n, greedy, truncate, batch_sharding, own_loops)
    device_ids, device_mask = (ids, mask) if batch_sharding is None else jax.device_put((ids, mask), batch_sharding)
    stops = _stop_array(set(cfg.eos_ids) | set(stop_ids))
    pad = jnp.asarray(pad_id, jnp.int32)
    params = SamplingParams.create(temperature if temperature > 0 else 1.0, top_k, top_p, min_p)
    prompt_len = ids.shape[1]
    # Segments: (the response length a segment decodes to, its cache's slots beyond the prompt); the last one decodes
    # to max_new_tokens within the segment that holds it.
    ends = buckets.segment_ends(gen_len)
    last = next(i for i, e in enumerate(ends) if e >= max_new_tokens)
    segments = [(e, e) for e in ends[:last]] + [(max_new_tokens, ends[last])]
    with jax.set_mesh(batch_sharding.mesh) if explicit else contextlib.nullcontext():
        carry, prompt_tokens, prompt_mask = _prefill(
            program, segments[0][1], state, device_ids, device_mask, stops, pad, key, params
        )
        out = None  # the output buffers, once rows have been dropped from the carry
        for i, (end, slots) in enumerate(segments):
            if carry["cache"].span < prompt_len + slots:
                carry = _grow(carry, prompt_len + slots)
            carry = _decode(program, state, carry, stops, pad, jnp.asarray(end, jnp.int32), key, params)
            if i + 1 == len(segments):
                break
            done = parallel.to_host(carry["done"])
            if done.all():
                break
            keep = _rows_to_keep(done, carry["row"].shape[0], shards, explicit)
            if keep is not None:
                if out is None:
                    out = {name: jnp.zeros_like(carry[name]) for name in _OUTPUT}
                out = _write_rows(out, carry)
                carry = _keep_rows(program, carry, keep)
        out = {name: carry[name] for name in _OUTPUT} if out is None else _write_rows(out, carry)
        result = SampleOutput(
            tokens=out["tokens"],
            mask=out["mask"],
            logprobs=out["logprobs"],
            policy_logprobs=out["policy_logprobs"],
            lengths=jnp.sum(out["mask"], axis=1),
            stopped=out["done"],
            prompt_tokens=prompt_tokens,
            prompt_mask=prompt_mask,
        )
        if result.tokens.shape == (batch * n, max_new_tokens):
            return result
        return _trim(result, batch * n, max_new_tokens)


def _rows_to_keep(done: np.ndarray, rows: int, shards: int, explicit: bool) -> np.ndarray | None:
    """Between segments: the carry rows to decode on (indices, -1 for padding) when the live rows fit a batch of at
    most half the current one (a power of two times the batch shards), else None (keep them all). On a mesh with
    Explicit axes rows are never dropped: moving them between devices would need the whole cache gathered."""
    live = np.flatnonzero(~done)
    size = shards * (1 << max(-(-len(live) // shards) - 1, 0).bit_length())
    if explicit or size * 2 > rows:
        return None
    keep = np.full(size, -1, np.int32)
    keep[: len(live)] = live
    return keep
