"""The decoder-only transformer (Llama 3 / Qwen2 / Qwen3) and its KV cache.

Positions are explicit: a padded batch passes `attention_mask` and each row's positions are `cumsum(mask) - 1`,
so left- and right-padded rows see the same RoPE angles as unpadded ones. Decoding writes into a static-size
`KVCache`; every row writes the same slot at each step (prompts are left-padded to one length), and `valid`
remembers which slots hold real tokens. `ModelConfig.remat` wraps each layer of the cache-free forward (the one
training differentiates) in `nnx.remat`; decoding is never differentiated and runs the layers as they are.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import PartitionSpec as P

from nsa_jax.models.config import REMAT_POLICIES, ModelConfig
from nsa_jax.models.layers import MLP, Attention, RMSNorm, embed, explicit_spec, gathered, param, rope_inv_freq
from nsa_jax.models.packing import Packing


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PrefixKV:
    """A prompt's keys and values stored once for the `n` rows that continue it (a group's samples): k[i] [B, KVH,
    Dh, P] and v[i] [B, KVH, P, Dh] (the `KVCache` layout), valid [B, P], beside a cache of B*n rows in which rows q*n .. q*n+n-1 continue prompt q.
    Every query of those rows attends to every valid prefix slot (the prompt precedes the row's own slots)."""

    k: tuple[jax.Array, ...]
    v: tuple[jax.Array, ...]
    valid: jax.Array

    @property
    def length(self) -> int:
        return self.valid.shape[1]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KVCache:
    """Keys and values for `S` slots, one array per layer: k[i] [B, KVH, Dh, S], v[i] [B, KVH, S, Dh]; valid [B, S];
    index [] next slot. One array per layer lets a decode step update each in place and read it whole (a row of a
    stacked [L, ...] buffer is copied out first), and the KV heads before the slots make them the batch dimensions
    of the attention matmuls, so the cache is read as it lies, without a transpose. The keys have the slots last:
    a step's scores are then [G, Dh] x [Dh, S] products, which XLA CPU ran 2.7x faster than over [S, Dh] keys
    (batch 256, 2 KV heads, 80-144 slots, 2-core Xeon); the values keep [S, Dh], the fast form of their product.

    prefix: None, or a `PrefixKV` shared by groups of rows: each row then attends to its prompt's prefix slots and
    then to its own S slots (the sampler keeps a prompt's KV once per group instead of once per sample)."""

    k: tuple[jax.Array, ...]
    v: tuple[jax.Array, ...]
    valid: jax.Array
    index: jax.Array
    prefix: PrefixKV | None = None

    @property
    def max_len(self) -> int:
        """The rows' own slots (without a shared prefix)."""
        return self.valid.shape[1]

    @property
    def span(self) -> int:
        """Slots a row attends over: its own and its shared prefix's."""
        return self.max_len + (0 if self.prefix is None else self.prefix.length)


def positions_from_mask(attention_mask: jax.Array) -> jax.Array:
    """[B, T] {0,1} -> [B, T] int32 positions counting only real tokens (pads get the position of their neighbour)."""
    return jnp.maximum(jnp.cumsum(attention_mask.astype(jnp.int32), axis=-1) - 1, 0)


class DecoderLayer(nnx.Module):
    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.input_layernorm = RMSNorm(cfg.hidden_size, "embed", cfg, rngs=rngs)
        self.self_attn = Attention(cfg, rngs=rngs)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, "embed", cfg, rngs=rngs)
        self.mlp = MLP(cfg, rngs=rngs)

    def __call__(self, x, positions, inv_freq, allowed, kv=None, attention=("dense", 0), prefix=None):
        """One block. kv is None, or (k_cache, v_cache, index): this block's `KVCache` buffers and the first slot
        to write; `attention` is (implementation, chunk), see `Attention.attend`; prefix is None or this
        block's shared prefix (k, v, valid) of a `PrefixKV`. Returns (x, updated (k_cache, v_cache) or None)."""
        q, k, v = self.self_attn.project_qkv(self.input_layernorm(x), positions, inv_freq)
        heads_major = kv is not None
        if heads_major:
            k_cache, v_cache, index = kv
            k_cache = jax.lax.dynamic_update_slice(k_cache, _as_cached(k, k_cache, (0, 2, 3, 1)), (0, 0, 0, index))
            v_cache = jax.lax.dynamic_update_slice(v_cache, _as_cached(v, v_cache, (0, 2, 1, 3)), (0, 0, index, 0))
            k, v, kv = k_cache, v_cache, (k_cache, v_cache)
        if prefix is not None:
            x = x + self.self_attn.attend_after_prefix(q, prefix, k, v, allowed)
        else:
            x = x + self.self_attn.attend(q, k, v, allowed, *attention, heads_major=heads_major)
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, kv

    def after_prompt(
        self, xp, xr, pos_p, pos_r, inv_freq, allowed_p, allowed_r, p_valid, packing=None, attention=("dense", 0)
    ):
        """One cache-free block over prompts xp [B, P, d] and their continuations xr [B*n, T, d] (rows q*n ..
        q*n+n-1 continue prompt q): the prompts attend among themselves where allowed_p [B, P, P], each
        continuation to its prompt's valid keys (p_valid [B, P]) and to its own where allowed_r [B*n, T, T]. The
        same block as over the n rows `prompt + continuation`, with each prompt's part computed once. With a
        `Packing`, xr and pos_r hold the continuations' real tokens packed, [D, N, ...]: everything but the
        attention runs on them, the attention on the rows (`Packing.unpack` before, `pack` after). Returns
        (xp, xr)."""
        qp, kp, vp = self.self_attn.project_qkv(self.input_layernorm(xp), pos_p, inv_freq)
        qr, kr, vr = self.self_attn.project_qkv(self.input_layernorm(xr), pos_r, inv_freq)
        if packing is not None:
            qr, kr, vr = map(packing.unpack, (qr, kr, vr))
        xp = xp + self.self_attn.attend(qp, kp, vp, allowed_p, *attention)
        prefix = (jnp.transpose(kp, (0, 2, 3, 1)), jnp.swapaxes(vp, 1, 2), p_valid)  # the KVCache layout
        xr = xr + self.self_attn.attend_after_prefix(
            qr, prefix, kr, vr, allowed_r, *attention, heads_major=False, packing=packing
        )
        xp = xp + self.mlp(self.post_attention_layernorm(xp))
        xr = xr + self.mlp(self.post_attention_layernorm(xr))
        return xp, xr


def _as_cached(x: jax.Array, like: jax.Array, order: tuple[int, ...]) -> jax.Array:
    """New keys or values [B, T, KVH, Dh] transposed by `order` into the layout of the cache `like`, in its dtype
    (and its sharding on an Explicit mesh)."""
    spec = explicit_spec(like)
    x = jnp.transpose(x.astype(like.dtype), order)
    return x if spec is None else jax.sharding.reshard(x, spec)


def _block_fn(attention: tuple[str, int]):
    """One cache-free layer as a function of the module, `(layer, x, positions, inv_freq, allowed) -> x`, with the
    attention implementation bound: the unit `nnx.remat` recomputes in the backward pass (its arguments must all be
    positional)."""

    def block(layer: DecoderLayer, x, positions, inv_freq, allowed) -> jax.Array:
        return layer(x, positions, inv_freq, allowed, attention=attention)[0]

    return block


def _block_after_prompt_fn(attention: tuple[str, int]):
    """`DecoderLayer.after_prompt` as a function of the module with the attention bound, for `nnx.remat`."""

    def block(layer: DecoderLayer, *args) -> tuple[jax.Array, jax.Array]:
        return layer.after_prompt(*args, attention=attention)

    return block


class Transformer(nnx.Module):
    """Decoder-only LM. `model(ids, attention_mask=m)` gives logits; `hidden_states` + `unembedding` avoid them."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.config = cfg
        self.embed_tokens = param(rngs, (cfg.vocab_size, cfg.hidden_size), ("vocab", "embed"), cfg)
        self.layers = nnx.List([DecoderLayer(cfg, rngs=rngs) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, "embed", cfg, rngs=rngs)
        if not cfg.tie_word_embeddings:
            self.lm_head = param(rngs, (cfg.hidden_size, cfg.vocab_size), ("embed", "vocab"), cfg)

    # ----------------------------------------------------------------------------------------------- public API
    def __call__(self, input_ids: jax.Array, attention_mask: jax.Array | None = None) -> jax.Array:
        """[B, T] int32 -> logits [B, T, V] float32."""
        return self.logits(self.hidden_states(input_ids, attention_mask))

    def hidden_states(self, input_ids: jax.Array, attention_mask: jax.Array | None = None) -> jax.Array:
        """Final (normed) hidden states [B, T, d] in the compute dtype; positions derived from the mask."""
        if attention_mask is None:
            attention_mask = jnp.ones(input_ids.shape, jnp.int32)
        hidden, _ = self.forward(input_ids, positions_from_mask(attention_mask), attention_mask)
        return hidden

    def hidden_states_after_prompt(
        self,
        prompt_ids: jax.Array,
        prompt_mask: jax.Array,
        input_ids: jax.Array,
        attention_mask: jax.Array,
        packing: Packing | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """The hidden states of B*n rows that share prompts, with each prompt computed once.

        prompt_ids, prompt_mask [B, P]: one row per prompt; input_ids, attention_mask [B*n, T]: the continuations,
        rows q*n .. q*n+n-1 continuing prompt q (group-major). Returns the final (normed) hidden states of the
        prompts [B, P, d] and of the continuations [B*n, T, d]: those of `hidden_states` on the B*n rows
        `concat(prompt q, continuation)`, within float tolerance. The prompt's tokens pass each layer once
        instead of n times; the gradient with respect to them sums over the n continuations.

        packing: a `Packing` of `attention_mask`'s tokens: the continuations' real tokens then pass the
        position-wise layers packed, and their hidden states come back packed, [D, N, d] (`packing.unpack` gives
        the rows, zeros at the padding).
        """
        cfg = self.config
        b, r = prompt_ids.shape[0], input_ids.shape[0]
        if r % b:
            raise ValueError(f"{r} continuation rows do not split into groups over {b} prompts")
        inv_freq = rope_inv_freq(cfg)
        table = self.embed_tokens[...]
        pack = (lambda x: x) if packing is None else packing.pack
        xp, xr = (embed(table, ids).astype(cfg.dtype) for ids in (prompt_ids, pack(input_ids)))
        pos_p = positions_from_mask(prompt_mask)
        # A continuation token's position counts its prompt's tokens first (pads in either part are never keys).
        pos_r = jnp.repeat(jnp.sum(prompt_mask.astype(jnp.int32), axis=1), r // b)[:, None]
        pos_r = pack(pos_r + positions_from_mask(attention_mask))
        p_valid, r_valid = prompt_mask.astype(bool), attention_mask.astype(bool)
        causal = lambda n: jnp.tril(jnp.ones((n, n), bool))[None]
        allowed_p = causal(prompt_ids.shape[1]) & p_valid[:, None, :]
        allowed_r = causal(input_ids.shape[1]) & r_valid[:, None, :]
        block = _block_after_prompt_fn((cfg.attention, cfg.attention_chunk))
        if cfg.remat != "none":
            block = nnx.remat(block, policy=REMAT_POLICIES[cfg.remat])
        for layer in self.layers:
            xp, xr = block(layer, xp, xr, pos_p, pos_r, inv_freq, allowed_p, allowed_r, p_valid, packing)
        return self.norm(xp), self.norm(xr)

    def unembedding(self) -> jax.Array:
        """The output projection [d, V] (the transposed embedding when tied)."""
        if self.config.tie_word_embeddings:
            return self.embed_tokens[...].T
        return self.lm_head[...]

    def logits(self, hidden: jax.Array) -> jax.Array:
        """hidden [..., d] -> logits [..., V] in float32 (accumulated in float32 from the compute dtype)."""
        w = gathered(self.unembedding(), hidden).astype(self.config.dtype)
        return jnp.einsum("...d,dv->...v", hidden, w, preferred_element_type=jnp.float32)

    def init_cache(self, batch_size: int, max_len: int, dtype=None, *, like: jax.Array | None = None) -> KVCache:
        """An empty cache of `max_len` slots for `batch_size` rows, in `dtype` (default the compute dtype).

        like: the [B, T] token ids the cache is for. On a mesh with Explicit axes, where every cache write must match
        the buffers' sharding, the buffers are split like like's batch and, over the KV heads, like the k/v
        projections' outputs. Otherwise (and without it) they are created unsharded, as XLA propagates shardings.
        """
        cfg = self.config
        value_shape = (batch_size, cfg.num_key_value_heads, max_len, cfg.head_dim)
        key_shape = (batch_size, cfg.num_key_value_heads, cfg.head_dim, max_len)
        dtype = dtype or cfg.dtype
        spec = None if like is None else explicit_spec(like)
        kv_spec = valid_spec = None
        if spec is not None:
            kv_heads = explicit_spec(gathered(self.layers[0].self_attn.k_proj[...], like))[1]
            kv_spec, valid_spec = P(spec[0], kv_heads, None, None), P(spec[0], None)
        layers = range(cfg.num_hidden_layers)
        return KVCache(
            k=tuple(jnp.zeros(key_shape, dtype, out_sharding=kv_spec) for _ in layers),
            v=tuple(jnp.zeros(value_shape, dtype, out_sharding=kv_spec) for _ in layers),
            valid=jnp.zeros((batch_size, max_len), bool, out_sharding=valid_spec),
            index=jnp.zeros((), jnp.int32),
        )

    def forward(
        self,
        input_ids: jax.Array,
        positions: jax.Array,
        attention_mask: jax.Array,
        cache: KVCache | None = None,
    ) -> tuple[jax.Array, KVCache | None]:
        """The one forward pass everything else calls.

        input_ids, positions, attention_mask: [B, T]. Without a cache, token t attends to tokens s <= t whose mask
        is 1. With a cache, the T tokens are written to slots [index, index + T), and token t attends to every
        valid slot s <= index + t. Returns (final hidden [B, T, d], updated cache or None).
        """
        cfg = self.config
        x = embed(self.embed_tokens[...], input_ids).astype(cfg.dtype)
        inv_freq = rope_inv_freq(cfg)
        t = input_ids.shape[1]
        key_ok = attention_mask.astype(bool)
        attention = (cfg.attention, cfg.attention_chunk)
        if cache is None:
            causal = jnp.tril(jnp.ones((t, t), bool))
            allowed = causal[None] & key_ok[:, None, :]  # [B, T, T]
            block = _block_fn(attention)
            if cfg.remat != "none":
                block = nnx.remat(block, policy=REMAT_POLICIES[cfg.remat])
            for layer in self.layers:
                x = block(layer, x, positions, inv_freq, allowed)
            return self.norm(x), None

        index = cache.index
        valid = jax.lax.dynamic_update_slice(cache.valid, key_ok, (0, index))
        slot = jnp.arange(cache.max_len)
        query_slot = index + jnp.arange(t)
        allowed = (slot[None, :] <= query_slot[:, None])[None] & valid[:, None, :]  # [B, T, S]
        ks, vs = list(cache.k), list(cache.v)
        for i, layer in enumerate(self.layers):
            shared = None if cache.prefix is None else (cache.prefix.k[i], cache.prefix.v[i], cache.prefix.valid)
            x, (ks[i], vs[i]) = layer(x, positions, inv_freq, allowed, (ks[i], vs[i], index), attention, shared)
        cache = dataclasses.replace(cache, k=tuple(ks), v=tuple(vs), valid=valid, index=index + t)
        return self.norm(x), cache


def init_model(cfg: ModelConfig, seed: int = 0) -> Transformer:
    """A randomly initialised model (normal(0, initializer_range) weights, unit norms, zero biases)."""
    return Transformer(cfg, rngs=nnx.Rngs(params=seed))
