"""Tokens/s of the jitted GRPO train step against an equivalent PyTorch eager step, same model, same batch, same run.

JAX: `nsa_jax.train.make_train_step` (forward, chunked token log-probs, `losses.grpo_loss`, AdamW with global-norm
clipping), jitted with explicit shardings and donated state. PyTorch: `transformers.LlamaForCausalLM` loaded from the
same HF directory, the same GRPO loss written in torch (group-normalised advantages, clipped ratio, token-mean),
`clip_grad_norm_` and `torch.optim.AdamW`, eager, `torch.set_num_threads(2)`.

The step's FLOPs come from XLA's cost analysis of the compiled JAX step (both sides do the same maths), so the run
also prints each side's achieved FLOP rate against a large jitted float32 matmul's on this machine
(`benchmarks.sampling.matmul_rate`): the ceiling a compute-bound step can approach.

    python benchmarks/train_step.py [--batch 16 --group 4 --seq 128 --steps 10 --variant tiny]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # for `benchmarks`

import jax
import ml_collections
import numpy as np
import torch
import transformers

from benchmarks.sampling import matmul_rate
from nsa_jax import losses, models, parallel
from nsa_jax.train import init_state, jit_train_step, make_train_step, split_model, state_shardings
from nsa_jax.train.core import make_optimizer

OPT = ml_collections.ConfigDict(
    {"learning_rate": 1e-4, "warmup_steps": 0, "end_lr_factor": 1.0, "b1": 0.9, "b2": 0.95, "eps": 1e-8,
     "weight_decay": 0.0, "max_grad_norm": 1.0}
)  # fmt: skip


def make_batch(batch: int, seq: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Prompts of seq/4 tokens then responses of random length; rewards in {0, 1}; logp_old a fixed draw."""
    rng = np.random.default_rng(seed)
    prompt = seq // 4
    lengths = rng.integers(seq // 2, seq + 1, batch)
    attention = (np.arange(seq)[None] < lengths[:, None]).astype(np.int32)
    response = attention * (np.arange(seq)[None] >= prompt)
    return {
        "input_ids": (rng.integers(3, vocab, (batch, seq)) * attention).astype(np.int32),
        "attention_mask": attention,
        "mask": response[:, 1:].astype(np.float32),  # [B, T-1]: targets that are response tokens
        "logp_old": (-rng.uniform(1.0, 5.0, (batch, seq - 1))).astype(np.float32),
        "rewards": rng.integers(0, 2, batch).astype(np.float32),
    }


def jax_grpo_loss(model, batch, rng, *, group: int):
    del rng
    hidden = model.hidden_states(batch["input_ids"], attention_mask=batch["attention_mask"])
    logp = losses.token_logprobs(hidden[:, :-1], model.unembedding(), batch["input_ids"][:, 1:], chunk_size=1024)
    return losses.grpo_loss(logp, batch["logp_old"], batch["rewards"], batch["mask"], group, agg="token-mean")


def bench_jax(path: str, batch: dict[str, np.ndarray], group: int, steps: int) -> tuple[float, float]:
    """(seconds for `steps` steps, FLOPs of one step by XLA's cost analysis)."""
    mesh = parallel.make_mesh()
    model = models.from_pretrained(path)
    tx = make_optimizer(OPT, total_steps=steps + 2)
    graphdef, params = split_model(model)
    shardings = state_shardings(model, tx, mesh)
    batch_shardings = {k: parallel.batch_sharding(mesh, v.ndim) for k, v in batch.items()}
    step = jit_train_step(
        make_train_step(graphdef, functools.partial(jax_grpo_loss, group=group), tx), shardings, batch_shardings
    )
    state = jax.jit(functools.partial(init_state, tx=tx, seed=0), out_shardings=shardings)(params)
    device_batch = {k: jax.device_put(v, batch_shardings[k]) for k, v in batch.items()}
    step = step.lower(state, device_batch).compile()  # compiled once, here; its cost analysis gives the FLOPs
    cost = step.cost_analysis()
    flops = float((cost[0] if isinstance(cost, list) else cost)["flops"])
    for _ in range(2):  # warm up
        state, metrics = step(state, device_batch)
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = step(state, device_batch)
    jax.block_until_ready(metrics)
    return time.perf_counter() - start, flops


def torch_grpo_loss(logp, logp_old, rewards, mask, group: int, eps_clip: float = 0.2):
    """The same maths as `losses.grpo_loss` (ddof 1 std, eps 1e-6, clipped surrogate, token-mean)."""
    r = rewards.view(-1, group)
    adv = ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-6)).view(-1, 1)
    ratio = torch.exp(torch.clamp(logp - logp_old, -20.0, 20.0))
    surrogate = torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps_clip, 1 + eps_clip) * adv)
    return -(surrogate * mask).sum() / mask.sum()


def bench_torch(path: str, batch: dict[str, np.ndarray], group: int, steps: int) -> float:
    torch.set_num_threads(2)
    model = transformers.LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=OPT.learning_rate, betas=(OPT.b1, OPT.b2), eps=OPT.eps,
                            weight_decay=OPT.weight_decay)  # fmt: skip
    t = {k: torch.from_numpy(v) for k, v in batch.items()}
    ids = t["input_ids"].long()

    def step():
        logits = model(input_ids=ids, attention_mask=t["attention_mask"]).logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]
        loss = torch_grpo_loss(logp, t["logp_old"], t["rewards"], t["mask"], group)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), OPT.max_grad_norm)
        opt.step()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--variant", default="tiny", help="built-in model variant (models.tiny_model_dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(models.tiny_model_dir(os.path.join(tmp, "model"), variant=args.variant))
        batch = make_batch(args.batch, args.seq, models.load_config(path).vocab_size)
        tokens = args.batch * args.seq * args.steps
        jax_s, flops = bench_jax(path, batch, args.group, args.steps)
        torch_s = bench_torch(path, batch, args.group, args.steps)
    peak = matmul_rate()
    print(f"model {args.variant}, batch {args.batch} x {args.seq} tokens, {args.steps} timed steps (after 2 warm-up)")
    print(f"jax   (jit)  : {tokens / jax_s:10.0f} tokens/s  ({jax_s / args.steps * 1e3:7.1f} ms/step)")
    print(f"torch (eager): {tokens / torch_s:10.0f} tokens/s  ({torch_s / args.steps * 1e3:7.1f} ms/step)")
    print(f"ratio jax/torch: {torch_s / jax_s:.2f}x")
    for name, seconds in (("jax", jax_s), ("torch", torch_s)):
        rate = flops * args.steps / seconds
        print(f"{name:5s} achieved {rate / 1e9:6.1f} GFLOP/s = {rate / peak:4.0%} of the 2048^3 f32 matmul's")
    print(f"step {flops / 1e9:.2f} GFLOP (XLA cost analysis); 2048^3 float32 matmul {peak / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
