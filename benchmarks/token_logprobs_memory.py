"""Compiled temporary memory of ``losses.token_logprobs`` (chunked) against the naive full-logits log-softmax.

Nothing is allocated: shapes go in as ``jax.ShapeDtypeStruct``, and the figure is XLA's own
``compile().memory_analysis().temp_size_in_bytes`` for the value and for the value-and-gradient with respect to
hidden states and unembedding. Default shapes are the issue's target (Qwen-sized vocabulary, one 8 x 2048 batch,
d = 1024, bfloat16 weights and activations as a real model has them); the target is temp bytes <= 1/8 of the full
float32 logits.

    python benchmarks/token_logprobs_memory.py [--chunk-sizes 256,512,1024] [--batch 8 --seq 2048 --dim 1024 --vocab 151936]
"""

import argparse

import jax
import jax.numpy as jnp

from nsa_jax import losses


def naive_logprobs(hidden, unembed, targets):
    logits = jnp.einsum("btd,dv->btv", hidden, unembed, preferred_element_type=jnp.float32)  # [B, T, V] f32
    return jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), targets[..., None], axis=-1)[..., 0]


def temp_bytes(fn, args) -> tuple[int, int]:
    """Temp bytes of ``fn`` and of its value-and-gradient in (hidden, unembed)."""

    def value_and_grad(h, w, y):
        return jax.value_and_grad(lambda h, w: jnp.sum(fn(h, w, y)), argnums=(0, 1))(h, w)

    value = jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes
    grad = jax.jit(value_and_grad).lower(*args).compile().memory_analysis().temp_size_in_bytes
    return value, grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=151936)
    parser.add_argument("--chunk-sizes", default="256,512,1024")
    parser.add_argument("--skip-naive", action="store_true", help="do not compile the full-logits version")
    args = parser.parse_args()

    b, t, d, v = args.batch, args.seq, args.dim, args.vocab
    shapes = (
        jax.ShapeDtypeStruct((b, t, d), jnp.bfloat16),
        jax.ShapeDtypeStruct((d, v), jnp.bfloat16),
        jax.ShapeDtypeStruct((b, t), jnp.int32),
    )
    logits_bytes = b * t * v * 4
    print(f"backend {jax.default_backend()}, jax {jax.__version__}")
    print(f"B x T = {b} x {t}, d = {d}, V = {v}, bf16 hidden/unembed")
    print(
        f"full float32 logits: {logits_bytes / 2**30:.3f} GiB; target temp <= 1/8 = {logits_bytes / 8 / 2**30:.3f} GiB"
    )
    print(f"{'variant':<22}{'value GiB':>11}{'ratio':>8}{'grad GiB':>11}{'ratio':>8}  target met")
    rows = []
    if not args.skip_naive:
        rows.append(("naive (full logits)", naive_logprobs))
    for chunk in (int(c) for c in args.chunk_sizes.split(",")):
        rows.append((f"chunked {chunk}", lambda h, w, y, c=chunk: losses.token_logprobs(h, w, y, chunk_size=c)))
    for name, fn in rows:
        value, grad = temp_bytes(fn, shapes)
        met = "yes" if max(value, grad) <= logits_bytes / 8 else "no"
        print(
            f"{name:<22}{value / 2**30:>11.3f}{value / logits_bytes:>8.3f}"
            f"{grad / 2**30:>11.3f}{grad / logits_bytes:>8.3f}  {met}"
        )


if __name__ == "__main__":
    main()
