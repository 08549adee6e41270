"""Building blocks of the decoder: parameters with logical axes, RMSNorm, RoPE, attention, SwiGLU MLP.

Every parameter is an `nnx.Param` whose metadata `axes` names its logical axes ("vocab", "embed", "heads",
"kv_heads", "head_dim", "mlp", "layers"); `nsa_jax.parallel` maps those names to mesh axes with one table.

On a mesh with Auto axes XLA propagates shardings, and left alone it may split a matmul over its contraction (the
FSDP-sharded embedding dimension) instead of gathering the weight: it then all-gathers the [B*T, d] activations
and all-reduces the [B*T, mlp] products of every layer (measured on the RL step of a 256-wide model over 8
devices). So the projections' and the embedding's outputs are pinned to the batch split of the data-parallel axes
(`batch_split`, the other dimensions left to XLA), which leaves gathering each weight as the cheap way, as FSDP
does. They are pinned as 2-D [B*T, ...] matrices, their rows flattened: where B divides the devices that is B's
split, and where it does not but B*T does (the RL update's prompts, computed once per group, are fewer than the
devices when a micro-batch holds few groups) each row's tokens are split instead and the attention gathers the
keys and values of its row, where XLA had split the prompts' matmuls over their contraction and all-reduced the
activations of every layer.

On a mesh with Explicit axes every array's sharding is part of its type, so the layers say what each op produces:
a parameter is used `gathered` over the mesh axes that shard the activations' batch, and the embedding lookup names
its output sharding. Without a mesh all of this is a no-op.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from nsa_jax.models.config import ModelConfig
from nsa_jax.parallel.mesh import axes_of, batch_axes, entry_of

# A finite "minus infinity": a fully masked row (a left-pad query) gets a uniform softmax instead of NaN.
_MASK_VALUE = -0.7 * float(jnp.finfo(jnp.float32).max)


def param(rngs: nnx.Rngs, shape: tuple[int, ...], axes: tuple[str, ...], cfg: ModelConfig, init: str = "normal"):
    """A parameter of `shape` tagged with logical `axes`; `init` is "normal" (std initializer_range), "ones", "zeros"."""
    if init == "normal":
        value = cfg.initializer_range * jax.random.normal(rngs.params(), shape, jnp.float32)
    elif init == "ones":
        value = jnp.ones(shape, jnp.float32)
    else:
        value = jnp.zeros(shape, jnp.float32)
    return nnx.Param(value.astype(cfg.param_dtype), axes=axes)


def explicit_spec(x: jax.Array) -> PartitionSpec | None:
    """x's PartitionSpec when its sharding is part of its type (a mesh with Explicit axes), else None."""
    sharding = jax.typeof(x).sharding
    if AxisType.Explicit not in sharding.mesh.axis_types:
        return None
    return sharding.spec


def gathered(w: jax.Array, x: jax.Array) -> jax.Array:
    """w laid out for use with activations x [B, ...]: on an Explicit mesh, without the mesh axes that shard x's batch
    dimension (a weight split over the data-parallel "fsdp" axis is all-gathered there, as FSDP does); otherwise w.
    """
    spec = explicit_spec(x)
    if spec is None:
        return w
    batch = set(axes_of(spec[0]))
    w_spec = jax.typeof(w).sharding.spec
    kept = PartitionSpec(*[entry_of(a for a in axes_of(entry) if a not in batch) for entry in w_spec])
    return w if kept == w_spec else jax.sharding.reshard(w, kept)


def batch_split(x: jax.Array) -> jax.Array:
    """x [B, ...] constrained to B split over the data-parallel axes of its mesh when that mesh has Auto axes (the
    other dimensions left to XLA's propagation); x itself without a mesh, on Explicit or Manual axes (the sharding
    is already in the type there), or when those axes do not divide B. The layers pass their outputs flattened to
    [B*T, ...] (module docstring)."""
    mesh = getattr(jax.typeof(x).sharding, "mesh", None)
    if mesh is None or mesh.empty:
        return x
    axes = batch_axes(mesh)
    if not axes or x.shape[0] % math.prod(mesh.shape[a] for a in axes):
        return x
    if any(mesh.axis_types[mesh.axis_names.index(a)] != AxisType.Auto for a in axes):
        return x
    spec = PartitionSpec(axes if len(axes) > 1 else axes[0], *[PartitionSpec.UNCONSTRAINED] * (x.ndim - 1))
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


def embed(table: jax.Array, ids: jax.Array) -> jax.Array:
    """Rows of table [V, d] at ids [B, T] -> [B, T, d], sharded like ids (and d replicated) on an Explicit mesh."""
    spec = explicit_spec(ids)
    if spec is None:
        return batch_split(table.at[ids.reshape(-1)].get(mode="fill")).reshape(*ids.shape, table.shape[-1])
    return gathered(table, ids).at[ids].get(mode="fill", out_sharding=PartitionSpec(*spec, None))


def dense(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """x [..., d_in] @ kernel [d_in, ...out] -> [..., ...out], as one 2-D matmul.

    Flattening the leading axes matters on CPU: XLA's backward of a 3-D contraction ran about 2x slower than the
    same 2-D matmul (the tiny model's MLP: 0.24 s -> 0.12 s for B x T = 3072).
    """
    lead, out = x.shape[:-1], kernel.shape[1:]
    kernel = gathered(kernel, x)
    x2, k2 = x.reshape(-1, x.shape[-1]), kernel.reshape(kernel.shape[0], -1)
    spec = explicit_spec(x)
    if spec is None:
        return batch_split(x2 @ k2).reshape(*lead, *out)
    # Explicit mesh: rows keep x's sharding and columns the kernel's; a contraction split on both sides (the
    # row-parallel o_proj and down_proj) is summed over its mesh axis.
    y = jnp.matmul(x2, k2, out_sharding=PartitionSpec(explicit_spec(x2)[0], explicit_spec(k2)[1]))
    return y.reshape(*lead, *out, out_sharding=PartitionSpec(*spec[:-1], *explicit_spec(kernel)[1:]))


class RMSNorm(nnx.Module):
    """y = x / sqrt(mean(x^2) + eps) * w, computed in float32 and cast back (as HF does)."""

    def __init__(self, dim: int, axis_name: str, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.weight = param(rngs, (dim,), (axis_name,), cfg, "ones")
        self.eps = cfg.rms_norm_eps

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return gathered(self.weight[...], x).astype(x.dtype) * x32.astype(x.dtype)


def rope_inv_freq(cfg: ModelConfig) -> jax.Array:
    """Inverse frequencies [head_dim/2] of RoPE with the config's theta and scaling (llama3 or linear)."""
    dim = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (jnp.arange(0, dim, 2, dtype=jnp.float32) / dim))
    scaling = cfg.rope_scaling_dict
    kind = scaling.get("rope_type", "default")
    if kind == "linear":
        return inv_freq / scaling["factor"]
    if kind == "llama3":
        # Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
        factor = scaling["factor"]
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_len = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv_freq
        scaled = jnp.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old_len / high) & (wavelen <= old_len / low)
        return jnp.where(medium, smoothed, scaled)
    return inv_freq


def apply_rope(x: jax.Array, positions: jax.Array, inv_freq: jax.Array) -> jax.Array:
    """Rotates x [B, T, H, Dh] by angle position * inv_freq, HF "rotate_half" layout (first half, second half).

    Written as x * [cos, cos] + swap_halves(x) * [-sin, sin], the halves swapped by reversing an axis of length 2
    instead of splitting x and joining the two rotated halves: the same products and sums (a - b is a + (-b)), but
    XLA CPU fuses it into one loop without a concatenation, in the forward and the backward pass (q and k's RoPE
    with the head-layout copy after it, forward and backward: 13.4 -> 11.1 ms per layer at 256 x 40 tokens on a
    2-core Xeon)."""
    angles = positions[..., None].astype(jnp.float32) * inv_freq  # [B, T, Dh/2]
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    cos2 = jnp.concatenate([cos, cos], axis=-1)[:, :, None, :]  # [B, T, 1, Dh], shared by the heads
    sin2 = jnp.concatenate([-sin, sin], axis=-1)[:, :, None, :]
    x32 = x.astype(jnp.float32)
    halves = x32.reshape(*x.shape[:-1], 2, x.shape[-1] // 2)
    swapped = halves[..., ::-1, :].reshape(x.shape)  # (x2, x1)
    return (x32 * cos2 + swapped * sin2).astype(x.dtype)


class Attention(nnx.Module):
    """Grouped-query attention with optional q/k/v bias (Qwen2) and per-head q/k RMSNorm (Qwen3)."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        d, h, kvh, dh = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.cfg = cfg
        self.q_proj = param(rngs, (d, h, dh), ("embed", "heads", "head_dim"), cfg)
        self.k_proj = param(rngs, (d, kvh, dh), ("embed", "kv_heads", "head_dim"), cfg)
        self.v_proj = param(rngs, (d, kvh, dh), ("embed", "kv_heads", "head_dim"), cfg)
        self.o_proj = param(rngs, (h, dh, d), ("heads", "head_dim", "embed"), cfg)
        if cfg.attention_bias:
            self.q_bias = param(rngs, (h, dh), ("heads", "head_dim"), cfg, "zeros")
            self.k_bias = param(rngs, (kvh, dh), ("kv_heads", "head_dim"), cfg, "zeros")
            self.v_bias = param(rngs, (kvh, dh), ("kv_heads", "head_dim"), cfg, "zeros")
        if cfg.qk_norm:
            self.q_norm = RMSNorm(dh, "head_dim", cfg, rngs=rngs)
            self.k_norm = RMSNorm(dh, "head_dim", cfg, rngs=rngs)

    def project_qkv(self, x: jax.Array, positions: jax.Array, inv_freq: jax.Array):
        """x [B, T, d] -> q [B, T, H, Dh], k and v [B, T, KVH, Dh], with RoPE applied to q and k."""
        dt = self.cfg.dtype
        q = dense(x, self.q_proj[...].astype(dt))
        k = dense(x, self.k_proj[...].astype(dt))
        v = dense(x, self.v_proj[...].astype(dt))
        if self.cfg.attention_bias:
            q, k, v = (
                y + gathered(b[...], x).astype(dt) for y, b in ((q, self.q_bias), (k, self.k_bias), (v, self.v_bias))
            )
        if self.cfg.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        return apply_rope(q, positions, inv_freq), apply_rope(k, positions, inv_freq), v

    def attend(
        self,
        q: jax.Array,
        k: jax.Array,
        v: jax.Array,
        allowed: jax.Array,
        impl: str = "dense",
        chunk: int = 0,
        *,
        heads_major: bool = False,
    ) -> jax.Array:
        """q [B, T, H, Dh] over keys k, v [B, S, KVH, Dh] where allowed [B, T, S]; returns [B, T, d]. With
        `heads_major` k and v are laid out as the KV cache holds them, k [B, KVH, Dh, S] and v [B, KVH, S, Dh].

        `impl` (`ModelConfig.attention`) is how the scores are computed; the three agree within float tolerance:
        - "dense": the [B, H, T, S] float32 scores and probabilities at once;
        - "chunked": queries in blocks of `chunk` (`ModelConfig.attention_chunk`), each block's scores recomputed
          in the backward pass (`jax.checkpoint`), so a layer's gradient holds one block's [B, H, chunk, S]
          instead of all T rows (memory-efficient attention, Rabe & Staats, arXiv 2112.05682); the same as "dense"
          when T <= chunk or on a mesh with Explicit axes;
        - "fused": `jax.nn.dot_product_attention`, which picks the backend's fused kernel where it has one (cuDNN
          flash attention on GPU) and XLA's dense computation elsewhere.
        """
        b, t, h, dh = q.shape
        kv_axis = 1 if heads_major else 2
        kvh = k.shape[kv_axis]
        if impl == "fused":
            if heads_major:
                k, v = jnp.transpose(k, (0, 3, 1, 2)), jnp.swapaxes(v, 1, 2)
            out = jax.nn.dot_product_attention(q, k, v, mask=allowed[:, None, :, :])
            return self._project_out(out)
        spec, k_spec = explicit_spec(q), explicit_spec(k)
        # Explicit mesh: the query groups follow the KV heads' sharding (replicated when the KV heads are too few to
        # split over the tensor axis).
        grouped = None if spec is None else PartitionSpec(*spec[:2], k_spec[kv_axis], None, None)
        qg = q.reshape(b, t, kvh, h // kvh, dh, out_sharding=grouped)
        if impl == "chunked" and 0 < chunk < t and spec is None:
            out = _chunked_attention(qg, k, v, allowed, chunk, heads_major)
        else:
            out = _grouped_attention(qg, k, v, allowed, heads_major)
        return self._project_out(out)

    def attend_after_prefix(
        self,
        q: jax.Array,
        prefix: tuple[jax.Array, jax.Array, jax.Array],
        k: jax.Array,
        v: jax.Array,
        allowed: jax.Array,
        impl: str = "dense",
        chunk: int = 0,
        *,
        heads_major: bool = True,
        packing=None,
    ) -> jax.Array:
        """q [R, T, H, Dh] of R = B*n rows, where rows q*n .. q*n+n-1 continue prompt q, over that prompt's shared
        prefix (k [B, KVH, Dh, P] and v [B, KVH, P, Dh] as the cache holds them, valid [B, P]) and then their own
        keys k, v ([R, S, KVH, Dh], or the cache's layout with `heads_major`) where allowed [R, T, S]; returns
        [R, T, d]. One softmax over both,
        the attention over a sequence holding a copy of the prompt in every row, but each prompt's keys and values
        are read once for its n rows (its n*H/KVH queries per KV head are one matmul). Decoding reads the sampler's
        shared prompt cache this way; the training forward (`Transformer.hidden_states_after_prompt`) its prompts'
        keys. `impl` "chunked" takes the queries in blocks of `chunk`, as `attend` does. With a `Packing` of the rows'
        tokens the output is packed before `o_proj`, [D, N, d] (the projection runs on real tokens only)."""
        r, t, h, dh = q.shape
        spec, k_spec = explicit_spec(q), explicit_spec(k)
        # Explicit mesh: the query groups follow the KV heads' sharding, as in `attend`.
        grouped = None if spec is None else PartitionSpec(*spec[:2], k_spec[1 if heads_major else 2], None, None)
        qg = q.reshape(r, t, prefix[0].shape[1], h // prefix[0].shape[1], dh, out_sharding=grouped)
        attention = lambda q_block, allowed_block: _prefixed_attention(
            q_block, *prefix, k, v, allowed_block, heads_major
        )
        if impl == "chunked" and 0 < chunk < t and spec is None:
            out = _in_query_blocks(attention, qg, allowed, chunk)
        else:
            out = attention(qg, allowed)
        return self._project_out(out if packing is None else packing.pack(out))

    def _project_out(self, out: jax.Array) -> jax.Array:
        """Attention output [B, T, <heads...>, Dh] (heads flat or grouped) through `o_proj`: [B, T, d]."""
        w = self.o_proj[...]  # [H, Dh, d]
        wo = w.reshape(w.shape[0] * w.shape[1], w.shape[2]).astype(self.cfg.dtype)
        return dense(out.reshape(*out.shape[:2], wo.shape[0]), wo)


def _reshape(x: jax.Array, shape: tuple[int, ...], spec: PartitionSpec | None) -> jax.Array:
    """x.reshape(shape), naming the result's sharding `spec` on a mesh with Explicit axes (None elsewhere)."""
    return x.reshape(shape) if spec is None else x.reshape(shape, out_sharding=spec)


def _queries_by_head(qg: jax.Array) -> tuple[jax.Array, PartitionSpec | None]:
    """Grouped queries qg [B, T, KVH, G, Dh] as [B, KVH, T*G, Dh] (query (t, g) at t*G + g), and the PartitionSpec
    of that layout on an Explicit mesh (None elsewhere).

    The attention matmuls then have the batch and the KV heads as batch dimensions and one free dimension on each
    side, [T*G, Dh] x [Dh, S] and [T*G, S] x [S, Dh]: XLA CPU runs these as its fast (YNNPACK) dots. With the five-way
    layout it turned the probabilities-times-values product of a decode step (T = 1) around, [Dh, S] x [S, G], into
    a generic dot 2.5x slower for the whole attention (batch 256, 2 KV heads of 2 queries, 80 slots: 1.78 vs 0.71 ms
    per layer and step on a 2-core Xeon); the prefill and training forward at T = 128 ran 1.3-1.5x faster too."""
    b, t, kvh, g, dh = qg.shape
    spec = explicit_spec(qg)
    by_head = None if spec is None else PartitionSpec(spec[0], spec[2], None, None)
    return _reshape(jnp.swapaxes(qg, 1, 2), (b, kvh, t * g, dh), by_head), by_head


def _queries_back(out: jax.Array, t: int, spec: PartitionSpec | None) -> jax.Array:
    """[B, KVH, T*G, Dh] -> [B, T, KVH, G, Dh], the inverse of `_queries_by_head`."""
    b, kvh, m, dh = out.shape
    split = None if spec is None else PartitionSpec(spec[0], spec[1], None, None, None)
    return jnp.swapaxes(_reshape(out, (b, kvh, t, m // t, dh), split), 1, 2)


def _masked(scores: jax.Array, allowed: jax.Array, t: int, spec: PartitionSpec | None) -> jax.Array:
    """Scores [B, KVH, T*G, S] with _MASK_VALUE where allowed [B, T, S] is False (the same for a query's G heads)."""
    b, kvh, m, s = scores.shape
    split = None if spec is None else PartitionSpec(spec[0], spec[1], None, None, None)
    masked = jnp.where(allowed[:, None, :, None, :], _reshape(scores, (b, kvh, t, m // t, s), split), _MASK_VALUE)
    return _reshape(masked, scores.shape, spec)


def _prefixed_attention(
    qg: jax.Array,
    pk: jax.Array,
    pv: jax.Array,
    p_valid: jax.Array,
    k: jax.Array,
    v: jax.Array,
    allowed: jax.Array,
    heads_major: bool = True,
) -> jax.Array:
    """Grouped queries qg [R, T, KVH, G, Dh] (R = B*n rows, group-major) over their prompt's prefix pk [B, KVH, Dh,
    P], pv [B, KVH, P, Dh] where p_valid [B, P], then over their own k, v ([R, S, KVH, Dh], or the cache's k
    [R, KVH, Dh, S] and v [R, KVH, S, Dh] with `heads_major`) where allowed [R, T, S]; one float32 softmax over the
    P + S keys. Returns [R, T, KVH, G, Dh].

    The prefix's scores are one matmul per (prompt, KV head) over the n rows' queries, [n*T*G, Dh] x [Dh, P]. The
    softmax over both parts is taken without joining them: each part's exponentials against the larger of the two
    maxima, summed apart and added (the same numbers as one softmax over the joined scores, up to rounding)."""
    r, t = qg.shape[:2]
    b = pk.shape[0]
    q, spec = _queries_by_head(qg)  # [R, KVH, M, Dh], M = T*G
    kvh, m, dh = q.shape[1:]
    n = r // b
    # Explicit mesh: rows are split over the batch axes in whole groups, like their prompts (group-major), so
    # moving between the row and the (prompt, sample) views keeps every array where it is.
    batch, heads = (None, None) if spec is None else spec[:2]
    named = lambda *entries: None if spec is None else PartitionSpec(*entries)

    def to_prompts(x: jax.Array) -> jax.Array:  # [R, KVH, M, ...] -> [B, KVH, n*M, ...]
        rest = x.shape[3:]
        x = _reshape(x, (b, n, kvh, m, *rest), named(batch, None, heads, None, *[None] * len(rest)))
        return _reshape(jnp.swapaxes(x, 1, 2), (b, kvh, n * m, *rest), named(batch, heads, None, *[None] * len(rest)))

    def to_rows(x: jax.Array) -> jax.Array:  # [B, KVH, n*M, ...] -> [R, KVH, M, ...]
        rest = x.shape[3:]
        x = _reshape(x, (b, kvh, n, m, *rest), named(batch, heads, None, None, *[None] * len(rest)))
        return _reshape(jnp.swapaxes(x, 1, 2), (r, kvh, m, *rest), named(batch, heads, None, *[None] * len(rest)))

    keys, values = ("rkds", "rksd") if heads_major else ("rskd", "rskd")
    scale = math.sqrt(dh)  # divided by, as in _grouped_attention, so both round alike
    shared = jnp.einsum("bkmd,bkds->bkms", to_prompts(q), pk, preferred_element_type=jnp.float32) / scale
    shared = jnp.where(p_valid[:, None, None, :], shared, _MASK_VALUE)  # [B, KVH, n*M, P]
    own = jnp.einsum(f"rkmd,{keys}->rkms", q, k, preferred_element_type=jnp.float32) / scale
    own = _masked(own, allowed, t, spec)  # [R, KVH, M, S]
    # The shift cancels in the softmax, so no gradient flows through it (as in jax.nn.softmax).
    top = jax.lax.stop_gradient(jnp.maximum(to_rows(jnp.max(shared, axis=-1)), jnp.max(own, axis=-1)))  # [R, KVH, M]
    e_shared = jnp.exp(shared - to_prompts(top)[..., None])
    e_own = jnp.exp(own - top[..., None])
    total = to_rows(jnp.sum(e_shared, axis=-1)) + jnp.sum(e_own, axis=-1)
    out = to_rows(jnp.einsum("bkms,bksd->bkmd", e_shared.astype(pv.dtype), pv, preferred_element_type=jnp.float32))
    out = out + jnp.einsum(f"rkms,{values}->rkmd", e_own.astype(v.dtype), v, preferred_element_type=jnp.float32)
    return _queries_back((out / total[..., None]).astype(v.dtype), t, spec)


def _grouped_attention(
    qg: jax.Array, k: jax.Array, v: jax.Array, allowed: jax.Array, heads_major: bool = False
) -> jax.Array:
    """Softmax attention of grouped queries qg [B, T, KVH, G, Dh] over k, v [B, S, KVH, Dh] (the cache's k [B, KVH,
    Dh, S] and v [B, KVH, S, Dh] when `heads_major`) where allowed [B, T, S] (float32 scores and softmax); returns
    [B, T, KVH, G, Dh]. The matmuls run on the queries laid out by KV head (`_queries_by_head`)."""
    t = qg.shape[1]
    q, spec = _queries_by_head(qg)
    keys, values = ("bkds", "bksd") if heads_major else ("bskd", "bskd")
    scores = jnp.einsum(f"bkmd,{keys}->bkms", q, k, preferred_element_type=jnp.float32) / math.sqrt(q.shape[-1])
    probs = jax.nn.softmax(_masked(scores, allowed, t, spec), axis=-1).astype(v.dtype)
    return _queries_back(jnp.einsum(f"bkms,{values}->bkmd", probs, v), t, spec)


def _chunked_attention(
    qg: jax.Array, k: jax.Array, v: jax.Array, allowed: jax.Array, chunk: int, heads_major: bool = False
) -> jax.Array:
    """`_grouped_attention` one block of `chunk` queries at a time, each block rematerialised in the backward pass."""
    return _in_query_blocks(lambda q, a: _grouped_attention(q, k, v, a, heads_major), qg, allowed, chunk)


def _in_query_blocks(attention, qg: jax.Array, allowed: jax.Array, chunk: int) -> jax.Array:
    """`attention(q_block, allowed_block)` over blocks of `chunk` queries of qg [B, T, ...] with allowed [B, T, S]
    (the last block padded with masked queries), each block rematerialised in the backward pass (`jax.checkpoint`),
    so the gradient holds one block's scores at a time; returns the blocks' outputs joined, [B, T, ...]."""
    b, t = qg.shape[:2]
    n = -(-t // chunk)
    pad = n * chunk - t
    qg = jnp.pad(qg, ((0, 0), (0, pad)) + ((0, 0),) * (qg.ndim - 2))
    allowed = jnp.pad(allowed, ((0, 0), (0, pad), (0, 0)))
    blocks = jnp.moveaxis(qg.reshape(b, n, chunk, *qg.shape[2:]), 1, 0)  # [n, B, chunk, ...]
    masks = jnp.moveaxis(allowed.reshape(b, n, chunk, -1), 1, 0)  # [n, B, chunk, S]
    block = jax.checkpoint(lambda xs: attention(*xs))
    out = jax.lax.map(block, (blocks, masks))  # [n, B, chunk, ...]
    return jnp.moveaxis(out, 0, 1).reshape(b, n * chunk, *out.shape[3:])[:, :t]


class MLP(nnx.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        d, m = cfg.hidden_size, cfg.intermediate_size
        self.cfg = cfg
        self.gate_proj = param(rngs, (d, m), ("embed", "mlp"), cfg)
        self.up_proj = param(rngs, (d, m), ("embed", "mlp"), cfg)
        self.down_proj = param(rngs, (m, d), ("mlp", "embed"), cfg)
        if cfg.mlp_bias:
            self.gate_bias = param(rngs, (m,), ("mlp",), cfg, "zeros")
            self.up_bias = param(rngs, (m,), ("mlp",), cfg, "zeros")
            self.down_bias = param(rngs, (d,), ("embed",), cfg, "zeros")

    def __call__(self, x: jax.Array) -> jax.Array:
        dt = self.cfg.dtype
        gate = dense(x, self.gate_proj[...].astype(dt))
        up = dense(x, self.up_proj[...].astype(dt))
        if self.cfg.mlp_bias:
            gate, up = (
                gate + gathered(self.gate_bias[...], x).astype(dt),
                up + gathered(self.up_bias[...], x).astype(dt),
            )
        out = dense(swiglu(gate, up), self.down_proj[...].astype(dt))
        return out + gathered(self.down_bias[...], x).astype(dt) if self.cfg.mlp_bias else out


@jax.custom_vjp
def swiglu(gate: jax.Array, up: jax.Array) -> jax.Array:
    """silu(gate) * up, with a hand-written backward pass that keeps only `gate` and `up` (the projections' outputs,
    alive anyway):

        d gate = dy * up * s * (1 + gate * (1 - s)),  d up = dy * gate * s,  s = sigmoid(gate).

    Autodiff of `jax.nn.silu(gate) * up` also keeps silu's derivative as an extra [tokens, mlp] array, written in
    the forward pass and read in the backward (the miniature's MLP gradient at 10240 tokens: 34.8 -> 33.3 ms per
    layer on a 2-core Xeon). Reverse mode only (no `jax.jvp`)."""
    return jax.nn.silu(gate) * up


def _swiglu_fwd(gate: jax.Array, up: jax.Array):
    return swiglu(gate, up), (gate, up)


def _swiglu_bwd(residuals, dy: jax.Array):
    gate, up = residuals
    s = jax.nn.sigmoid(gate)
    return dy * up * s * (1 + gate * (1 - s)), dy * gate * s


swiglu.defvjp(_swiglu_fwd, _swiglu_bwd)
