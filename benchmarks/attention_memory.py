"""Compiled temporary memory of one decoder layer's gradient, by attention implementation (`model.attention`).

Nothing is allocated: the layer's parameters and input go in as `jax.ShapeDtypeStruct`, and the figure is XLA's own
`compile().memory_analysis().temp_size_in_bytes` for the gradient of a scalar of the layer's output with respect to
its parameters and input, without remat. The default shape is one layer of Qwen2.5-7B (hidden 3584, 28 query heads,
4 KV heads, head_dim 128, MLP 18944) on one 2048-token sequence in bfloat16, the README's worked example; the
dense figure's float32 [H, T, T] scores and probabilities are the part blocked attention removes.

    python benchmarks/attention_memory.py [--seq 2048 --batch 1 --chunks 256,512,1024 --layers 28]
"""

import argparse
import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from nsa_jax import models
from nsa_jax.models.layers import rope_inv_freq
from nsa_jax.models.transformer import DecoderLayer

QWEN2_5_7B = models.ModelConfig(
    model_type="qwen2", vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
    num_attention_heads=28, num_key_value_heads=4, head_dim=128, attention_bias=True, rope_theta=1e6,
    dtype=jnp.bfloat16, param_dtype=jnp.bfloat16,
)  # fmt: skip


def temp_bytes(cfg: models.ModelConfig, batch: int, seq: int) -> int:
    """Temp bytes of d(sum of the layer's output) / d(parameters, input) for one layer of `cfg`."""
    layer = nnx.eval_shape(lambda: DecoderLayer(cfg, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(layer)
    x = jax.ShapeDtypeStruct((batch, seq, cfg.hidden_size), cfg.dtype)
    inv_freq = rope_inv_freq(cfg)
    attention = (cfg.attention, cfg.attention_chunk)

    def loss(s, h):
        positions = jnp.broadcast_to(jnp.arange(seq), (batch, seq))
        allowed = jnp.broadcast_to(jnp.tril(jnp.ones((seq, seq), bool)), (batch, seq, seq))
        out, _ = nnx.merge(graphdef, s)(h, positions, inv_freq, allowed, attention=attention)
        return jnp.sum(out.astype(jnp.float32))

    compiled = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(state, x).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def model_temp_bytes(cfg: models.ModelConfig, batch: int, seq: int) -> int:
    """Temp bytes of d(sum of the final hidden states) / d(parameters) for the whole decoder stack of `cfg` (no
    vocabulary projection: `losses.token_logprobs` bounds that part separately)."""
    graphdef, state = nnx.split(nnx.eval_shape(lambda: models.init_model(cfg)))
    ids = jax.ShapeDtypeStruct((batch, seq), jnp.int32)

    def loss(s, tokens):
        mask = jnp.ones_like(tokens)
        hidden, _ = nnx.merge(graphdef, s).forward(tokens, models.positions_from_mask(mask), mask)
        return jnp.sum(hidden.astype(jnp.float32))

    compiled = jax.jit(jax.grad(loss)).lower(state, ids).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--chunks", default="256,512,1024")
    parser.add_argument("--layers", type=int, default=0, help="also the whole stack of this many layers (0: no)")
    parser.add_argument(
        "--dtype",
        default="bfloat16",
        help="compute and parameter dtype (XLA:CPU upcasts bfloat16 "
        "matmuls to float32, adding float32 copies that a TPU or GPU does not make)",
    )
    args = parser.parse_args()
    dtype = jnp.dtype(args.dtype)
    cfg, b, t = dataclasses.replace(QWEN2_5_7B, dtype=dtype, param_dtype=dtype), args.batch, args.seq
    scores = b * cfg.num_attention_heads * t * t * 4
    print(f"backend {jax.default_backend()}, jax {jax.__version__}; one Qwen2.5-7B layer, B x T = {b} x {t}, {dtype}")
    print(f"float32 [B, H, T, T] scores: {scores / 2**30:.2f} GiB each (scores and probabilities)")
    dense = temp_bytes(dataclasses.replace(cfg, attention="dense"), b, t)
    print(f"{'attention':<18}{'temp GiB':>10}{'vs dense':>10}")
    print(f"{'dense':<18}{dense / 2**30:>10.2f}{1.0:>10.2f}")
    variants = [("fused", 0)] + [("chunked", int(c)) for c in args.chunks.split(",")]
    for impl, chunk in variants:
        got = temp_bytes(dataclasses.replace(cfg, attention=impl, attention_chunk=chunk), b, t)
        name = impl if impl == "fused" else f"chunked {chunk}"
        print(f"{name:<18}{got / 2**30:>10.2f}{got / dense:>10.2f}")
    if args.layers:
        stack = dataclasses.replace(cfg, num_hidden_layers=args.layers)
        print(f"the whole stack of {args.layers} layers (embedding, layers, final norm; no remat):")
        dense = model_temp_bytes(dataclasses.replace(stack, attention="dense"), b, t)
        chunked = model_temp_bytes(dataclasses.replace(stack, attention="chunked", attention_chunk=512), b, t)
        print(f"{'dense':<18}{dense / 2**30:>10.2f}{1.0:>10.2f}")
        print(f"{'chunked 512':<18}{chunked / 2**30:>10.2f}{chunked / dense:>10.2f}")


if __name__ == "__main__":
    main()
