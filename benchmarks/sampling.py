"""Generation speed of `nsa_jax.sampling.generate` against transformers' PyTorch `generate`, same model and settings.

    python benchmarks/sampling.py [--batch 16 64 256] [--new-tokens 128] [--repeats 5] [--stop-ids K] [--group G]

Both sides get the same random Llama weights (float32), the same prompts, temperature-1 sampling with no
truncation, and exactly `--new-tokens` tokens per row (no EOS for either: HF gets `min_new_tokens`); with
`--stop-ids K` any of token ids 1..K ends a row on both sides (EOS), so rows finish at different lengths, as in RL.
Torch uses as many threads as XLA's CPU client (the machine's cores) unless --torch-threads says otherwise. Each
side is warmed up first; compile time is reported apart. Throughput is generated tokens (up to and with each row's
stop) per second of wall time, prefill of the short prompt included. nsa_jax runs twice: as it decodes by default
(in segments of `Buckets.cache_block` tokens, the cache grown to the filled length between segments and finished
rows dropped), and in one segment over the whole allocated cache, as it did before.

On a machine with several cores the run first splits XLA's CPU platform into one device per core
(`nsa_jax.cpu_devices`, as `python -m nsa_jax.main` does) and decodes with the batch split over them, as the RL
trainer's rollouts are (its mesh, `parallel.make_mesh()`); with more than one device a third run, the same decode on
one device, gives that lever's ratio in the same run, and a fourth, the same decode in one loop over the whole batch
(`own_loops=False`: the devices in step, meeting at every step's stop test) instead of a loop per device. Both
sides run with huge pages (`nsa_jax.hugepages`).

`--group G` samples G responses for each of batch/G prompts, as RL rollouts do: nsa_jax with `n=G` (each prompt's KV
stored once per group), transformers with `num_return_sequences=G` (it expands each prompt G times). The second
nsa_jax run is then the same rows without the shared prompt: the prompts repeated G times with `n=1`, a copy of the
prompt's KV per row, as it decoded before (the earlier code prefilled each prompt once and then copied its cache;
this peer prefills every copy, at these shapes about 1% of its time).

The roofline printed for each batch is the floor of one decode step, the larger of its memory and compute floors:
    t_step >= max(bytes read / memory bandwidth, FLOPs / matmul rate)
    bytes read = parameter bytes + KV-cache bytes
               = params + 2 (k and v) * layers * batch * context * kv_heads * head_dim * 4
    (with --group G the prompt's part of the context counts once per group: batch / G rows)
    FLOPs = 2 * batch * (matmul parameters) + 4 * layers * batch * heads * head_dim * context
with the context averaged over the run (prompt + half the new tokens), the work any decoder must do. The bandwidth is
measured here as the rate at which all the devices read a large array together (a jitted sum, each device its
part: on a 2-core CPU both cores, which together read up to twice what one thread copies), on either side of each
batch's timed rounds (the larger of the two; it moves with other load on the host) and the matmul rate with a large
jitted float32 matmul, so both are this machine's (until 2026-12-05 the memory floor used one thread's numpy
copy, printed beside it); on GPU/TPU put the device's HBM bandwidth and FLOP rate in. "nsa_jax at x of the
roofline" is that floor over nsa_jax's measured time per step.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == "__main__":  # the host as the main job sets it up
    from nsa_jax import cpu_devices, hugepages

    hugepages.reexec()
    cpu_devices.configure()

import jax
import jax.numpy as jnp
import numpy as np
import torch
import transformers
from flax import nnx
from timing import best_time as timed

from nsa_jax import models, parallel, sampling
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


def memory_bandwidth(mesh, nbytes: int = 1 << 28) -> float:
    """Bytes per second that all the mesh's devices read together: a jitted sum of a float32 array of `nbytes` per
    device, split over them (a decode step reads its weights and KV cache; each device reads its rows' part; XLA CPU
    also splits one large reduction over the cores). On the 2-core EPYC this read moved between 30 and 56 GB/s
    within an hour with `uptime` under 1 (other tenants of the host share its memory), so it is measured in the
    same run as the decode it is the floor of."""
    devices = mesh.devices.size
    split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(mesh.axis_names))
    x = jax.device_put(np.ones((devices, nbytes // 4), np.float32), split)
    total = jax.jit(lambda x: jnp.sum(x, axis=1))
    total(x).block_until_ready()
    return devices * nbytes / timed(lambda: total(x).block_until_ready(), 7)


def copy_bandwidth(nbytes: int = 1 << 28) -> float:
    """Bytes per second of a large numpy copy, one thread (each byte read once and written once): the memory floor's
    rate until 2026-12-05, printed for comparison with the earlier tables."""
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    seconds = timed(lambda: np.copyto(dst, src), 5)
    return 2 * nbytes / seconds


def matmul_rate(n: int = 2048) -> float:
    """FLOP/s of a jitted float32 [n, n] @ [n, n] matmul, the best case of XLA's matmuls here."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    product = jax.jit(lambda x: x @ x)
    product(a).block_until_ready()
    return 2 * n**3 / timed(lambda: product(a).block_until_ready(), 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-len", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--stop-ids", type=int, default=0, help="rows stop at any of token ids 1..K (0: exactly --new-tokens each)"
    )
    parser.add_argument("--group", type=int, default=1, help="responses per prompt (batch / G prompts)")
    parser.add_argument("--torch-threads", type=int, default=os.cpu_count() or 1, help="default: XLA's, the cores")
    args = parser.parse_args()

    torch.set_num_threads(args.torch_threads)
    hf, single_model = build_models(args.vocab, args.hidden, args.layers)
    mesh = parallel.make_mesh()  # every device on the data-parallel axis, as the trainers build it
    model = parallel.shard_model(nnx.clone(single_model), mesh)  # the same weights, placed on the mesh
    one_device = parallel.make_mesh(devices=jax.devices()[:1])
    cfg = model.config
    param_bytes = sum(p.numel() * p.element_size() for p in hf.parameters())
    matmul_params = sum(p.numel() for name, p in hf.named_parameters() if p.ndim == 2 and "embed_tokens" not in name)
    bandwidth, copy_rate, flop_rate = memory_bandwidth(mesh), copy_bandwidth(), matmul_rate()
    new = args.new_tokens
    print(
        f"llama: {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, vocab {cfg.vocab_size}, "
        f"{param_bytes / 1e6:.2f} MB float32 params; prompt {args.prompt_len}, {new} new tokens, temperature 1, "
        f"{args.group} per prompt; "
        f"{os.cpu_count()} cores, {len(jax.devices())} XLA devices, torch threads {args.torch_threads}; "
        f"jax {jax.__version__}, torch {torch.__version__}, transformers {transformers.__version__}; "
        f"read bandwidth at the start {bandwidth / 1e9:.1f} GB/s (all devices; one thread's copy "
        f"{copy_rate / 1e9:.1f}), "
        f"float32 matmul {flop_rate / 1e9:.0f} GFLOP/s"
    )
    stops = list(range(1, args.stop_ids + 1))  # token 0 is the pad
    counts = {}  # generated tokens of the last call of each side
    rng = np.random.default_rng(0)
    group = args.group
    for batch in args.batch:
        if batch % group:
            raise SystemExit(f"--batch {batch} is not a multiple of --group {group}")
        prompts = rng.integers(stops[-1] + 1 if stops else 1, cfg.vocab_size, size=(batch // group, args.prompt_len))
        prompts = prompts.astype(np.int32)

        def ours(prompts=prompts, buckets=None, name="ours", n=group, model=model, mesh=mesh, own_loops=None):
            buckets = buckets or sampling.Buckets()
            out = sampling.generate(
                model,
                prompts,
                n=n,
                max_new_tokens=new,
                key=jax.random.key(0),
                stop_ids=stops,
                buckets=buckets,
                mesh=mesh,
                own_loops=own_loops,
            )
            counts[name] = int(np.asarray(out.lengths).sum())
            assert stops or counts[name] == prompts.shape[0] * n * new

        def theirs(prompts=prompts, tokens=new):
            with torch.no_grad():
                out = hf.generate(
                    input_ids=torch.from_numpy(prompts.astype(np.int64)),
                    attention_mask=torch.ones(prompts.shape, dtype=torch.long),
                    do_sample=True,
                    temperature=1.0,
                    top_k=0,
                    top_p=1.0,
                    num_return_sequences=group,
                    max_new_tokens=tokens,
                    min_new_tokens=0 if stops else tokens,
                    eos_token_id=stops or None,
                    pad_token_id=0,
                )
            response = out[:, prompts.shape[1] :].numpy()
            ended = np.cumsum(np.isin(response, stops), axis=1) - np.isin(response, stops)  # stops before this one
            counts["theirs"] = int((ended == 0).sum())

        if group > 1:  # the peer: the same rows with a copy of the prompt in each
            peer, peer_name = functools.partial(ours, prompts=np.repeat(prompts, group, 0), name="peer", n=1), "copies"
        else:  # the peer: one segment over the whole cache
            peer = functools.partial(ours, buckets=sampling.Buckets(cache_block=1 << 30), name="peer")
            peer_name = "one segment"
        runs = [ours, peer]
        if len(jax.devices()) > 1:  # the same decode on one device
            runs.append(functools.partial(ours, name="single", model=single_model, mesh=one_device))
            runs.append(functools.partial(ours, name="one loop", own_loops=False))
        start = time.perf_counter()
        ours()
        first = time.perf_counter() - start
        for run in runs[1:]:
            run()
        # Alternating rounds, so all see the same machine; a ratio is the median of the rounds' ratios. The read
        # bandwidth is measured again on either side of them (it moves with the host's other tenants), and the
        # larger of the two sets this batch's memory floor.
        before = memory_bandwidth(mesh)
        rounds = np.array([[timed(run, 1) for run in runs] for _ in range(args.repeats)])
        after = memory_bandwidth(mesh)
        ours_s, peer_s = rounds[:, :2].min(axis=0)
        peer_ratio = float(np.median(rounds[:, 1] / rounds[:, 0]))
        theirs(tokens=8)  # warm-up
        theirs_s = timed(theirs, max(1, args.repeats - 1))
        ours_tps, peer_tps, theirs_tps = counts["ours"] / ours_s, counts["peer"] / peer_s, counts["theirs"] / theirs_s

        kv_row = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * 4  # bytes per row per slot
        context = args.prompt_len + new / 2
        kv_slots = batch // group * args.prompt_len + batch * new / 2  # the prompt's slots once per group
        bytes_s = (param_bytes + kv_row * kv_slots) / max(before, after)
        attention_flops = 4 * cfg.num_hidden_layers * cfg.num_attention_heads * cfg.head_dim * context
        flops_s = batch * (2 * matmul_params + attention_flops) / flop_rate
        floor_s = max(bytes_s, flops_s)
        line = (
            f"batch {batch:3d}: nsa_jax {ours_tps:9.0f} tok/s ({ours_s / new * 1e3:.3f} ms/step, compile "
            f"{first - ours_s:.1f} s; {peer_name} {peer_tps:.0f} tok/s, {peer_ratio:.2f}x) | transformers "
            f"{theirs_tps:8.0f} tok/s | ratio {ours_tps / theirs_tps:.2f}x"
        )
        if len(runs) > 2:
            single_ratio = float(np.median(rounds[:, 2] / rounds[:, 0]))
            line += (
                f" | on one device {counts['single'] / rounds[:, 2].min():.0f} tok/s, {len(jax.devices())} devices "
                f"{single_ratio:.2f}x that"
            )
            loop_ratio = float(np.median(rounds[:, 3] / rounds[:, 0]))
            one_loop_tps = counts["one loop"] / rounds[:, 3].min()
            line += f" | one loop over the batch {one_loop_tps:.0f} tok/s, own loops {loop_ratio:.2f}x that"
        if not stops:  # every row generates `new` tokens: the per-step roofline applies
            line += (
                f" | roofline {floor_s * 1e3:.3f} ms/step (memory {bytes_s * 1e3:.3f}, compute "
                f"{flops_s * 1e3:.3f}; read bandwidth {before / 1e9:.1f} / {after / 1e9:.1f} GB/s before / after the "
                f"rounds); nsa_jax at {floor_s / (ours_s / new):.0%} of the roofline"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
