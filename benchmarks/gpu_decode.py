"""Decode speed of a random model of Qwen2.5-0.5B's shape on one accelerator, and its fraction of the roofline.

    python benchmarks/gpu_decode.py [--batch 64 256] [--total 1024 4096] [--prompt-len 256] [--repeats 2]
        [--budget-s 300] [--tiny]

Issue 17's device run, prepared so that one call spends a lent GPU's minutes on measurements: a random model of
Qwen2.5-0.5B's shape (24 layers, width 896, 14 query and 2 KV heads of 64, MLP 4864, vocabulary 151,936, tied
embeddings, q/k/v bias), weights and compute in bfloat16 (float32 softmax, norms and logits, as `models` does),
`sampling.generate` at temperature 1 without truncation on one device, every row generating exactly
`total - prompt_len` tokens (no stop ids), for each batch and total length. Each configuration is compiled by a first
call (its time printed apart) and then timed `--repeats` times (best); configurations run smallest first and none
starts once `--budget-s` seconds have passed, so a run under a time limit still returns what it measured.

The roofline of a step is the larger of its memory and compute floors, both measured on the device in the same
run: bytes read (the parameters once, and the KV cache at the run's average context, prompt + half the new
tokens, in bfloat16) over the bandwidth of a large jitted array update (read and written once), and FLOPs (2 per
matmul parameter per row, plus the attention's 4 per head dimension per cached slot) over the rate of a jitted
8192^3 bfloat16 matmul. Decode at these batches is memory-bound on a GPU, so the memory floor is the HBM-bandwidth
roofline the issue asks for; "fraction" is that floor over the measured time per step.

Prints one JSON object per configuration (and writes them to $OUT/gpu_decode.jsonl when OUT is set). `--tiny`
shrinks the model and lengths so the script can be checked on a CPU (there bfloat16 runs slowly, as XLA CPU
converts it to float32; the figures mean nothing). On a lent H200, whose image holds JAX with CUDA, flax, optax and
transformers (nothing to install), from the repository root:

    PYTHONUNBUFFERED=1 python3 benchmarks/gpu_decode.py     # with a command time limit of ~590 s
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from timing import best_time as best_of

from nsa_jax import models, sampling

QWEN2_5_0_5B = {
    "model_type": "qwen2",
    "vocab_size": 151936,
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
TINY = {**QWEN2_5_0_5B, "vocab_size": 512, "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 2,
        "num_attention_heads": 4}  # fmt: skip


def bandwidth(nbytes: int) -> float:
    """Bytes per second of a jitted update of a bfloat16 array (each byte read once and written once)."""
    x = jnp.ones((nbytes // 2,), jnp.bfloat16)
    bump = jax.jit(lambda a: a + 1, donate_argnums=0)
    x = bump(x).block_until_ready()

    def run():
        nonlocal x
        x = bump(x).block_until_ready()

    return 2 * nbytes / best_of(run, 5)


def matmul_rate(n: int) -> float:
    """FLOP/s of a jitted [n, n] x [n, n] bfloat16 matmul accumulated in float32."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.bfloat16)
    product = jax.jit(lambda x: jnp.dot(x, x, preferred_element_type=jnp.float32))
    product(a).block_until_ready()
    return 2 * n**3 / best_of(lambda: product(a).block_until_ready(), 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--total", type=int, nargs="+", default=[1024, 4096], help="prompt + new tokens")
    parser.add_argument("--prompt-len", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--budget-s", type=float, default=300.0, help="no configuration starts after this")
    parser.add_argument("--tiny", action="store_true", help="a small model and lengths, to check the script on CPU")
    args = parser.parse_args()
    started = time.perf_counter()
    shape = TINY if args.tiny else QWEN2_5_0_5B
    cfg = models.ModelConfig.from_hf(shape)
    cfg = dataclasses.replace(cfg, dtype=jnp.bfloat16, param_dtype=jnp.bfloat16)
    model = models.init_model(cfg)
    params = jax.tree.leaves(nnx.state(model, nnx.Param))
    param_bytes = sum(p.size * p.dtype.itemsize for p in params)
    # Every 2-D weight is a matmul's; the tied embedding counts once, as the logits' projection (its lookup is free).
    matmul_params = sum(p.size for p in params if p.ndim == 2)
    bw = bandwidth(1 << (26 if args.tiny else 32))
    rate = matmul_rate(1024 if args.tiny else 8192)
    device = jax.devices()[0]
    header = {
        "device": device.device_kind,
        "platform": device.platform,
        "jax": jax.__version__,
        "params": sum(p.size for p in params),
        "param_bytes": param_bytes,
        "measured_bandwidth_GBps": round(bw / 1e9, 1),
        "measured_bf16_matmul_TFLOPs": round(rate / 1e12, 1),
    }
    print(json.dumps(header), flush=True)
    out_dir = os.environ.get("OUT")
    sink = open(os.path.join(out_dir, "gpu_decode.jsonl"), "w") if out_dir else None  # noqa: SIM115
    if sink:
        sink.write(json.dumps(header) + "\n")
    scale = 16 if args.tiny else 1
    configs = sorted(((t // scale, b) for t in args.total for b in args.batch), key=lambda c: c[0] * c[1])
    rng = np.random.default_rng(0)
    kv_slot = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * 2  # bytes per row and slot
    for total, batch in configs:
        if time.perf_counter() - started > args.budget_s:
            print(json.dumps({"skipped": {"batch": batch, "total": total}, "reason": "budget"}), flush=True)
            continue
        prompt_len = min(args.prompt_len // scale, total // 2)
        new = total - prompt_len
        prompts = rng.integers(1, cfg.vocab_size, size=(batch, prompt_len)).astype(np.int32)
        buckets = sampling.Buckets(max_prompt_len=prompt_len)

        def run(prompts=prompts, new=new, buckets=buckets):
            out = sampling.generate(model, prompts, max_new_tokens=new, key=jax.random.key(0), buckets=buckets)
            jax.block_until_ready(out.tokens)

        first = best_of(run, 1)
        seconds = best_of(run, args.repeats)
        step = seconds / new
        context = prompt_len + new / 2
        bytes_s = (param_bytes + kv_slot * batch * context) / bw
        attention_flops = 4 * cfg.num_hidden_layers * cfg.num_attention_heads * cfg.head_dim * context
        flops_s = batch * (2 * matmul_params + attention_flops) / rate
        row = {
            "batch": batch,
            "prompt_len": prompt_len,
            "new_tokens": new,
            "tok_per_s": round(batch * new / seconds),
            "ms_per_step": round(step * 1e3, 3),
            "compile_s": round(first - seconds, 1),
            "memory_floor_ms": round(bytes_s * 1e3, 3),
            "compute_floor_ms": round(flops_s * 1e3, 3),
            "fraction_of_hbm_roofline": round(bytes_s / step, 3),
            "fraction_of_roofline": round(max(bytes_s, flops_s) / step, 3),
        }
        print(json.dumps(row), flush=True)
        if sink:
            sink.write(json.dumps(row) + "\n")
            sink.flush()


if __name__ == "__main__":
    main()
