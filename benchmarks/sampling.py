"""Generation speed of `nsa_jax.sampling.generate` against transformers' PyTorch `generate`, same model and settings.

    python benchmarks/sampling.py [--batch 16 64] [--new-tokens 128] [--repeats 3]

Both sides get the same random Llama weights (float32), the same prompts, temperature-1 sampling with no
truncation, and exactly `--new-tokens` tokens per row (no EOS for either: HF gets `min_new_tokens`). Torch uses as
many threads as XLA's CPU client (the machine's cores) unless --torch-threads says otherwise. Each side is warmed up first; compile time is reported
apart. Throughput is generated tokens per second of wall time, prefill of the short prompt included.

The roofline printed for each batch is the memory-bound floor of one decode step:
    t_step >= (parameter bytes + KV-cache bytes read) / memory bandwidth
    KV-cache bytes read = 2 (k and v) * layers * batch * context * kv_heads * head_dim * bytes per element
with the context averaged over the run (prompt + half the new tokens); `generate` reads its whole allocated cache
(prompt bucket + generation bucket) each step, so its own floor uses that. The bandwidth is measured here with a
large numpy copy; on GPU/TPU put the device's HBM bandwidth in to read the fraction of the floor you get.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np
import torch
import transformers

from nsa_jax import models, sampling
from nsa_jax.models import hf_params


def build_models(vocab: int, hidden: int, layers: int, seed: int = 0):
    """A random HF Llama and its nsa_jax twin with the same float32 weights."""
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=3 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        eos_token_id=None,
        bos_token_id=None,
        pad_token_id=0,
    )
    hf = transformers.AutoModelForCausalLM.from_config(cfg).eval()
    model = models.init_model(models.ModelConfig.from_hf(cfg.to_dict()))
    hf_params.assign_hf_tensors(model, {k: v.numpy() for k, v in hf.state_dict().items()})
    return hf, model


def timed(fn, repeats: int) -> float:
    """Best wall time of `repeats` runs (the least disturbed by other load on the machine)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def memory_bandwidth(nbytes: int = 1 << 28) -> float:
    """Bytes per second of a large array copy (each byte is read once and written once)."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    seconds = timed(lambda: np.copyto(dst, src), 5)
    return 2 * nbytes / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-len", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch-threads", type=int, default=os.cpu_count() or 1, help="default: XLA's, the cores")
    args = parser.parse_args()

    torch.set_num_threads(args.torch_threads)
    hf, model = build_models(args.vocab, args.hidden, args.layers)
    cfg = model.config
    param_bytes = sum(p.numel() * p.element_size() for p in hf.parameters())
    bandwidth = memory_bandwidth()
    new = args.new_tokens
    print(
        f"llama: {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, vocab {cfg.vocab_size}, "
        f"{param_bytes / 1e6:.2f} MB float32 params; prompt {args.prompt_len}, {new} new tokens, temperature 1; "
        f"{os.cpu_count()} cores, torch threads {args.torch_threads}; jax {jax.__version__}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}; measured copy bandwidth {bandwidth / 1e9:.1f} GB/s"
    )
    rng = np.random.default_rng(0)
    for batch in args.batch:
        prompts = rng.integers(1, cfg.vocab_size, size=(batch, args.prompt_len)).astype(np.int32)

        def ours(prompts=prompts):
            out = sampling.generate(model, prompts, max_new_tokens=new, key=jax.random.key(0), temperature=1.0)
            out.tokens.block_until_ready()
            assert out.tokens.shape == (prompts.shape[0], new) and bool(out.mask.all())

        def theirs(prompts=prompts, tokens=new):
            with torch.no_grad():
                hf.generate(
                    input_ids=torch.from_numpy(prompts.astype(np.int64)),
                    attention_mask=torch.ones(prompts.shape, dtype=torch.long),
                    do_sample=True,
                    temperature=1.0,
                    top_k=0,
                    top_p=1.0,
                    max_new_tokens=tokens,
                    min_new_tokens=tokens,
                    pad_token_id=0,
                )

        start = time.perf_counter()
        ours()
        first = time.perf_counter() - start
        ours_s = timed(ours, args.repeats)
        theirs(tokens=8)  # warm-up
        theirs_s = timed(theirs, max(1, args.repeats - 1))
        ours_tps, theirs_tps = batch * new / ours_s, batch * new / theirs_s

        kv_row = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * 4  # bytes per row per slot
        context = args.prompt_len + new / 2
        floor_s = (param_bytes + kv_row * batch * context) / bandwidth
        buckets = sampling.Buckets()
        allocated = buckets.round_up(args.prompt_len) + buckets.round_up(new)
        ours_floor_s = (param_bytes + kv_row * batch * allocated) / bandwidth
        print(
            f"batch {batch:3d}: nsa_jax {ours_tps:9.0f} tok/s ({ours_s / new * 1e3:.3f} ms/step, compile "
            f"{first - ours_s:.1f} s) | transformers {theirs_tps:8.0f} tok/s ({theirs_s / new * 1e3:.3f} ms/step) | "
            f"ratio {ours_tps / theirs_tps:.1f}x | roofline {floor_s * 1e3:.3f} ms/step "
            f"(ours allocated {ours_floor_s * 1e3:.3f}); nsa_jax at {ours_floor_s / (ours_s / new):.0%} of its floor"
        )


if __name__ == "__main__":
    main()
