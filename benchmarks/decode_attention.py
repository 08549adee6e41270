"""One decode step's attention in three layouts, same shapes, same run, alternating rounds: milliseconds per layer
and step, and each form's speed over the first.

A decode step attends one query per row and head over the KV cache: per (row, KV head) a [G, Dh] x [Dh, S] product
for the scores and a [G, S] x [S, Dh] product for the output, thousands of small matmuls per step at large batch.
How XLA CPU runs them depends on the operands' layout:
- "five-way" (the model before issue 17's change): queries [B, T, KVH, G, Dh], keys and values [B, KVH, S, Dh],
  einsums over all five query dimensions. XLA turned the output product around into [Dh, S] x [S, G], which its
  fast (YNNPACK) dots do not take, and ran it as a generic dot.
- "by head": the queries laid out [B, KVH, T*G, Dh] first (`layers._queries_by_head`), keys still [S, Dh].
- "model": the model's own `layers._grouped_attention` over the cache as it is laid out (`models.KVCache`): the
  queries by head and the keys with the slots last, [B, KVH, Dh, S], so the scores are [G, Dh] x [Dh, S].
Each form runs inside a `lax.fori_loop` of `--steps` steps that writes one new key and value into the cache per
step, as decoding does, so the cache is updated in place and read whole at every step.

    python benchmarks/decode_attention.py [--batch 16 64 256] [--slots 80 144] [--rounds 5]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from nsa_jax.models import layers


def five_way(qg, k, v, allowed):
    """The attention before: einsums over the grouped queries' five dimensions, keys and values [B, KVH, S, Dh]."""
    scores = jnp.einsum("btkgd,bksd->bkgts", qg, k, preferred_element_type=jnp.float32) / math.sqrt(qg.shape[-1])
    scores = jnp.where(allowed[:, None, None, :, :], scores, layers._MASK_VALUE)
    probs = jax.nn.softmax(scores, axis=-1)
    return jnp.einsum("bkgts,bksd->btkgd", probs, v)


def by_head(qg, k, v, allowed):
    """Queries laid out by KV head, keys and values [B, KVH, S, Dh]."""
    t = qg.shape[1]
    q, spec = layers._queries_by_head(qg)
    scores = jnp.einsum("bkmd,bksd->bkms", q, k, preferred_element_type=jnp.float32) / math.sqrt(q.shape[-1])
    probs = jax.nn.softmax(layers._masked(scores, allowed, t, spec), axis=-1)
    return layers._queries_back(jnp.einsum("bkms,bksd->bkmd", probs, v), t, spec)


def model(qg, k, v, allowed):
    """The model's attention over the cache's layout: keys [B, KVH, Dh, S]."""
    return layers._grouped_attention(qg, k, v, allowed, heads_major=True)


FORMS = {"five-way": (five_way, False), "by head": (by_head, False), "model": (model, True)}


def decode_loop(attention, keys_last: bool, slots: int, steps: int):
    """`steps` decode steps of one layer's attention, each writing a new key and value at slot step % slots."""

    @jax.jit
    def run(q, k, v):
        batch = q.shape[0]
        allowed = jnp.ones((batch, 1, slots), bool)

        def step(i, carry):
            k, v, acc = carry
            new = acc[:, 0, :, :1, :]  # [B, KVH, 1, Dh], depends on the previous step
            slot = i % slots
            if keys_last:
                k = jax.lax.dynamic_update_slice(k, jnp.swapaxes(new, 2, 3), (0, 0, 0, slot))
            else:
                k = jax.lax.dynamic_update_slice(k, new, (0, 0, slot, 0))
            v = jax.lax.dynamic_update_slice(v, new, (0, 0, slot, 0))
            return k, v, acc + 1e-3 * attention(q + acc, k, v, allowed)

        return jax.lax.fori_loop(0, steps, step, (k, v, jnp.zeros_like(q)))[2]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--slots", type=int, nargs="+", default=[80, 144])
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--group", type=int, default=2, help="query heads per KV head")
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    kvh, g, dh = args.kv_heads, args.group, args.head_dim
    print(
        f"one layer's decode attention: {kvh} KV heads x {g} queries, head dim {dh} (the benchmarks' tiny Llama), "
        f"{args.steps} steps per call; {os.cpu_count()} cores, jax {jax.__version__}"
    )
    rng = np.random.default_rng(0)
    for batch in args.batch:
        for slots in args.slots:
            q = jnp.asarray(rng.normal(size=(batch, 1, kvh, g, dh)), jnp.float32)
            k = jnp.asarray(rng.normal(size=(batch, kvh, slots, dh)), jnp.float32)
            v = jnp.asarray(rng.normal(size=(batch, kvh, slots, dh)), jnp.float32)
            runs, outs = {}, {}
            for name, (attention, keys_last) in FORMS.items():
                fn = decode_loop(attention, keys_last, slots, args.steps)
                keys = jnp.swapaxes(k, 2, 3).copy() if keys_last else k
                runs[name] = (fn, keys)
                outs[name] = np.asarray(fn(q, keys, v))  # compiles
            for name, out in outs.items():  # the three are one computation
                np.testing.assert_allclose(out, outs["five-way"], rtol=1e-4, atol=1e-4, err_msg=name)
            times = {name: [] for name in FORMS}
            for _ in range(args.rounds):
                for name, (fn, keys) in runs.items():
                    start = time.perf_counter()
                    jax.block_until_ready(fn(q, keys, v))
                    times[name].append((time.perf_counter() - start) / args.steps * 1e3)
            med = {name: float(np.median(ts)) for name, ts in times.items()}
            cells = " | ".join(f"{name} {ms:.3f} ms ({med['five-way'] / ms:.2f}x)" for name, ms in med.items())
            print(f"batch {batch:3d}, {slots:3d} slots: {cells}  (median of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
