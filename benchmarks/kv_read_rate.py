"""How fast one core reads a decode step's KV cache in each of the attention's products, against plain reads of the
same bytes: the rate that bounds the attention phase of a decode step at large batch on CPU.

    python benchmarks/kv_read_rate.py [--rows 128] [--slots 144 512] [--rounds 5] [--both]

One device's share of the sampling benchmark's batch 256 (`--rows` 128 rows, 2 KV heads of 2 queries, head dim 32,
float32), each layer's keys laid out as the cache holds them ([rows, KV heads, Dh, slots]) and its values
[rows, KV heads, slots, Dh]. A decode step at that batch reads more cache than the L3 holds (4 layers, 144 slots:
38 MB per device, 75 MB for both, against 32 MB), so it streams it from memory; here each form runs over as many
layers as make 64 MB of keys (or values), so it streams too. For each form, milliseconds per pass, the bytes it
must read over that time, and that rate over the flat read's (the first form, the peer) in the same rounds:
- "sum of all": `jnp.sum` of each layer's keys, a flat read of the bytes;
- "keys, over Dh" / "values, over slots": each layer's keys summed over the head dimension, values over the slots,
  the reductions of the two products without their multiplications;
- "keys tiled, over Dh": the same sum over keys laid out [rows, KV heads, slots / 16, Dh, 16] (16 slots, one
  64-byte line, per head-dimension row of a tile);
- "scores" / "output": the attention's two products as the model runs them (`layers._grouped_attention`'s
  einsums), [G, Dh] x [Dh, S] over the keys and [G, S] x [S, Dh] over the values;
- "scores, keys tiled": the scores product over the tiled keys, written as the sum over Dh of the queries' entries
  times the keys' [.., 16] rows (one elementwise fusion, [rows, KV heads, slots / 16, G, 16] out), not a dot.
- "scores, keys as rows": the same product over keys laid out [rows, KV heads, slots, Dh] as the left operand,
  [S, Dh] x [Dh, G] (each slot's Dh entries contiguous), scores [rows, KV heads, slots, G];
- "scores, multiply and sum": the queries times the keys as the cache holds them, summed over Dh (a reduction
  fusion instead of a dot).
XLA CPU vectorises its loops 256 bits wide by default; `XLA_FLAGS=--xla_cpu_prefer_vector_width=512` (on a CPU with
AVX-512) makes the 16 slots of a tile one vector, which the tiled scores need to keep up with the memory.
The process is pinned to one core (Linux), as each of the command line's CPU devices runs on one; `--both` runs the
same measurement in two processes at once on cores 0 and 1, as the two devices of a decode step stream together.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def measure(rows: int, slots_list: list[int], rounds: int, core: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    import jax
    import jax.numpy as jnp
    import numpy as np

    kvh, g, dh = 2, 2, 32
    rng = np.random.default_rng(core)
    for slots in slots_list:
        layers = -(-(64 << 20) // (rows * kvh * dh * slots * 4))
        q = jnp.asarray(rng.standard_normal((rows, kvh, g, dh)), jnp.float32)
        p = jax.nn.softmax(jnp.asarray(rng.standard_normal((rows, kvh, g, slots)), jnp.float32), axis=-1)
        keys = [jnp.asarray(rng.standard_normal((rows, kvh, dh, slots)), jnp.float32) for _ in range(layers)]
        values = [jnp.asarray(rng.standard_normal((rows, kvh, slots, dh)), jnp.float32) for _ in range(layers)]
        tiled = [x.reshape(rows, kvh, dh, slots // 16, 16).transpose(0, 1, 3, 2, 4).copy() for x in keys]
        rows_first = [jnp.swapaxes(x, 2, 3).copy() for x in keys]

        def tiled_scores(a, xs):  # [rows, KVH, C, G, 16]: sum over d of a[..., d] * x[..., d, :]
            return [sum(a[:, :, None, :, d, None] * x[:, :, :, None, d, :] for d in range(dh)) for x in xs]

        def multiply_and_sum(a, xs):  # [rows, KVH, G, slots]: sum over d of a[..., d, None] * x[..., d, :]
            return [jnp.sum(a[..., None] * x[:, :, None], axis=3) for x in xs]

        forms = {  # name: (fn(first, per-layer arrays), first, per-layer arrays)
            "sum of all": (lambda a, xs: [jnp.sum(x) for x in xs], q, keys),
            "keys, over Dh": (lambda a, xs: [jnp.sum(x, axis=2) for x in xs], q, keys),
            "keys tiled, over Dh": (lambda a, xs: [jnp.sum(x, axis=3) for x in xs], q, tiled),
            "values, over slots": (lambda a, xs: [jnp.sum(x, axis=2) for x in xs], q, values),
            "scores": (lambda a, xs: [jnp.einsum("bkmd,bkds->bkms", a, x) for x in xs], q, keys),
            "output": (lambda a, xs: [jnp.einsum("bkms,bksd->bkmd", a, x) for x in xs], p, values),
            "scores, keys tiled": (tiled_scores, q, tiled),
            "scores, keys as rows": (lambda a, xs: [jnp.einsum("bksd,bkmd->bksm", x, a) for x in xs], q, rows_first),
            "scores, multiply and sum": (multiply_and_sum, q, keys),
        }
        runs = {name: (jax.jit(fn), a, xs) for name, (fn, a, xs) in forms.items()}
        (want,), (got,) = runs["scores"][0](q, keys[:1]), runs["scores, keys tiled"][0](q, tiled[:1])
        got = jnp.swapaxes(got, 2, 3).reshape(want.shape)  # the same scores
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        (as_rows,), (summed,) = runs["scores, keys as rows"][0](q, rows_first[:1]), multiply_and_sum(q, keys[:1])
        for got in (jnp.swapaxes(as_rows, 2, 3), summed):  # the same scores
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(rounds):  # alternating rounds, so every form sees the same machine
            for name, (fn, a, xs) in runs.items():
                jax.block_until_ready(fn(a, xs))
                start = time.perf_counter()
                for _ in range(20):
                    out = fn(a, xs)
                jax.block_until_ready(out)
                times[name].append((time.perf_counter() - start) / 20)
        nbytes = layers * rows * kvh * dh * slots * 4  # the keys, or the values
        best = {name: min(t) for name, t in times.items()}
        flat = best["sum of all"]
        cells = " | ".join(
            f"{name} {t * 1e3:.2f} ms {nbytes / t / 1e9:.1f} GB/s ({flat / t:.2f}x)" for name, t in best.items()
        )
        print(f"core {core}, {rows} rows, {slots} slots, {layers} layers ({nbytes / 1e6:.0f} MB a form): {cells}")


def main() -> None:
    from nsa_jax import hugepages

    hugepages.reexec()  # as the sampling benchmark and the command line run
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--slots", type=int, nargs="+", default=[144, 512], help="multiples of 16")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--both", action="store_true", help="two processes at once, on cores 0 and 1")
    parser.add_argument("--core", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.both:
        measure(args.rows, args.slots, args.rounds, args.core)
        return
    common = [sys.executable, __file__, "--rows", str(args.rows), "--rounds", str(args.rounds), "--slots"]
    common += [str(s) for s in args.slots]
    sys.stdout.flush()
    procs = [subprocess.Popen([*common, "--core", str(core)]) for core in (0, 1)]
    sys.exit(max(proc.wait() for proc in procs))


if __name__ == "__main__":
    main()
