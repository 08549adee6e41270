"""Peak memory of a long generation, whose KV cache grows between decode segments and loses its finished rows.

    python benchmarks/sampler_memory.py [--batch 32] [--new-tokens 1024] [--stop-ids 0] [--rounds 2]

`generate` decodes in segments and grows the cache to the next segment's slots between them (`sampler._grow`); when
the live rows fit half the batch it cuts the cache to them (`sampler._keep_rows`). Both are done one array at a
time, each old buffer deleted once its copy exists, so the old and the new cache never sit in memory together whole.
The peer is the same generation with both done as one program over the whole cache, as until 2026-12-06 (the same
functions traced under one `jax.jit`, patched in): that program holds the old cache and the new one at once, up to
twice the cache at the last segment's growth. The reference is the same generation in one segment, its cache
allocated once at full size. Each side runs in a fresh process, alternating; a process generates once to compile,
resets its peak resident set (Linux: `/proc/self/clear_refs`), generates again and reports the peak over the memory
it held before that call. Printed: each side's peak, and the two segmented sides' excess over the one-segment
peak (what growing and cutting the cache cost on top of holding it) as a fraction of the cache at its largest (keys
and values of every layer, float32, prompt and response slots). The model is a random Llama whose cache dominates
(4 layers, 8 KV heads of 128, vocab 512); `--stop-ids K` ends a row at any of tokens 1..K, so rows finish at
different lengths and get dropped.
On a GPU or TPU the same mechanism bounds device memory; this measures the host's, with XLA's CPU client.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _whole_cache_programs() -> None:
    """Patches `sampler._grow` and `sampler._keep_rows` into one compiled program each over the whole carry (the
    peer): the same per-array functions, traced together under one `jax.jit` instead of run and freed in turn."""
    import jax

    from nsa_jax.sampling import sampler

    sampler._one_at_a_time = lambda fn, items: tuple(fn(item) for item in items)
    sampler._grow = jax.jit(sampler._grow, static_argnames="span")
    sampler._keep_rows = jax.jit(sampler._keep_rows, static_argnames="program")


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def measure(args: argparse.Namespace) -> None:
    """One side, in this process: prints `peak_MB cache_MB` for the second of two identical generations."""
    import gc

    import jax
    import numpy as np

    from nsa_jax import models, sampling

    if args.side == "whole":
        _whole_cache_programs()
    cfg = models.ModelConfig(
        vocab_size=512,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=8,
        head_dim=128,
        max_position_embeddings=4096,
    )
    model = models.init_model(cfg, seed=0)
    prompts = np.random.default_rng(0).integers(3, cfg.vocab_size, (args.batch, 16)).tolist()
    stops = list(range(1, args.stop_ids + 1))

    gen_len = sampling.Buckets().round_up(args.new_tokens)
    buckets = sampling.Buckets(cache_block=gen_len) if args.side == "one-segment" else sampling.Buckets()

    def run() -> None:
        kw = {"max_new_tokens": args.new_tokens, "stop_ids": stops, "buckets": buckets}
        jax.block_until_ready(sampling.generate(model, prompts, key=jax.random.key(0), **kw).tokens)

    run()  # compiles every program of the call
    gc.collect()
    before = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM, the peak resident set, to the current one
    run()
    peak = _status_kb("VmHWM")
    slots = 16 + gen_len
    cache = 2 * cfg.num_hidden_layers * args.batch * cfg.num_key_value_heads * cfg.head_dim * slots * 4
    print(f"{(peak - before) / 1024:.1f} {cache / 2**20:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=1024)
    parser.add_argument("--stop-ids", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--side", choices=["one-segment", "arrays", "whole"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        measure(args)
        return
    if not os.path.exists("/proc/self/clear_refs"):
        sys.exit("needs Linux's /proc/self/clear_refs to reset the peak resident set")
    env = {**os.environ, "NSA_JAX_HUGEPAGES": "0", "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, __file__, "--batch", str(args.batch), "--new-tokens", str(args.new_tokens)]
    command += ["--stop-ids", str(args.stop_ids), "--side"]
    names = {
        "one-segment": "one segment (the cache allocated once)",
        "arrays": "segments, one array at a time (nsa_jax)",
        "whole": "segments, whole cache in one program (before)",
    }
    peaks: dict[str, list[float]] = {side: [] for side in names}
    cache = 0.0
    for _ in range(args.rounds):
        for side in names:
            out = subprocess.run([*command, side], env=env, check=True, capture_output=True, text=True).stdout
            peak, cache = map(float, out.split()[-2:])
            peaks[side].append(peak)
    print(
        f"batch {args.batch}, {args.new_tokens} new tokens, stop ids 1..{args.stop_ids}: the cache at its largest "
        f"{cache:.0f} MB; peak memory over the start of the call:"
    )
    reference = min(peaks["one-segment"])
    for side, name in names.items():
        runs = ", ".join(f"{p:.0f}" for p in peaks[side])
        excess = (
            ""
            if side == "one-segment"
            else f"; over one segment {(min(peaks[side]) - reference) / cache:.2f}x the cache"
        )
        print(f"  {name}: {runs} MB{excess}")


if __name__ == "__main__":
    main()
