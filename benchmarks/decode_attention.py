"""Decode attention as einsum matmuls (the model's) against the same attention as products and sums, same model,
same run, alternating: `generate` tokens/s for each and their ratio, the median over rounds.

One query's attention is a [G, Dh] x [Dh, S] matmul per (row, KV head), thousands of tiny matmuls per step at large
batch; the products-and-sums form is one pass over the cache, which looked cheaper on CPU. The alternative is put in
by patching `nsa_jax.models.layers._grouped_attention` for the duration of its calls; those calls use a prompt bucket
one slot wider (`Buckets(min_len=17)`), so they compile programs of their own rather than reuse the cached ones.
Measured on a 2-core AMD EPYC: 0.94-1.05x at batch 16, 64, 256, so the model keeps the one einsum form.

    python benchmarks/decode_attention.py [--batch 16 64 256] [--new-tokens 128] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax
import jax.numpy as jnp
import numpy as np
from sampling import build_models

from nsa_jax import sampling
from nsa_jax.models import layers


def products_and_sums(qg, k, v, allowed, heads_major=False):
    """One query position over the heads-major cache k, v [B, KVH, S, Dh] as elementwise products and sums; any
    other call goes to the model's own `_grouped_attention`."""
    if not (heads_major and qg.shape[1] == 1):
        return ours(qg, k, v, allowed, heads_major)
    q = qg[:, 0].astype(jnp.float32)  # [B, KVH, G, Dh]
    scores = jnp.sum(q[:, :, :, None, :] * k[:, :, None, :, :], axis=-1) / np.sqrt(qg.shape[-1])  # [B, KVH, G, S]
    scores = jnp.where(allowed[:, :, None, :], scores, layers._MASK_VALUE)
    probs = jax.nn.softmax(scores, axis=-1)
    return jnp.sum(probs[..., None] * v[:, :, None, :, :], axis=3)[:, None].astype(v.dtype)


ours = layers._grouped_attention


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    _, model = build_models(512, 128, 4)
    print(
        f"tiny llama (4 layers, width 128, vocab 512), 16-token prompts, {args.new_tokens} new tokens, {os.cpu_count()} cores"
    )
    for batch in args.batch:
        prompts = np.random.default_rng(0).integers(1, 512, size=(batch, 16)).astype(np.int32)

        def run(attention, prompts=prompts) -> float:
            layers._grouped_attention = attention
            try:
                start = time.perf_counter()
                sampling.generate(
                    model, prompts, max_new_tokens=args.new_tokens, key=jax.random.key(0)
                ).tokens.block_until_ready()
                return time.perf_counter() - start
            finally:
                layers._grouped_attention = ours

        run(ours), run(products_and_sums)  # compile both
        times = np.array([[run(ours), run(products_and_sums)] for _ in range(args.rounds)])
        tokens = batch * args.new_tokens
        ratio = np.median(times[:, 1] / times[:, 0])
        print(
            f"batch {batch:3d}: einsum {tokens / np.median(times[:, 0]):8.0f} tok/s | products and sums "
            f"{tokens / np.median(times[:, 1]):8.0f} tok/s | einsum {ratio:.2f}x as fast (median of {args.rounds} rounds)",
            flush=True,
        )


if __name__ == "__main__":
    main()
