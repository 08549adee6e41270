"""Two of issue 17's levers against the model as it is, same weights, same run, alternating rounds: fused QKV and
gate/up projections, and bfloat16 weights and activations (float32 accumulation, softmax and norms).

    python benchmarks/fused_and_bf16.py [--batch 16 64 256] [--hidden 128] [--new-tokens 128] [--rounds 5]

- "fused": each layer's q, k and v projections as one [d, (H + 2 KVH) * Dh] matmul and gate and up as one
  [d, 2 * mlp] matmul, on weights concatenated once before the run (the model's own parameters are removed from
  that copy, so it holds the same bytes). Put in by wrapping `Attention.project_qkv` and `MLP.__call__`: a module
  that holds the fused weights takes the fused path, any other the model's own.
- "bf16": the model with `dtype = param_dtype = bfloat16` (`model.dtype` / `model.param_dtype` in a config), the
  option a real run on GPU or TPU takes; matmuls accumulate in float32 there, softmax and RMSNorm run in float32.

For each batch: `sampling.generate` tokens/s (temperature 1, 16-token prompts) of each variant and its speed over
the default as the median and the best of the rounds' ratios, with the share of tokens equal to the default's
(fused: the same products summed in another order, so almost all; bf16: a different model after the first
rounding). Then the gradient of a loss on the logits at 16 x 128 tokens (the training forward and backward).
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
from flax import nnx
from sampling import build_models

from nsa_jax import models, sampling
from nsa_jax.models import hf_params, layers

model_qkv, model_mlp = layers.Attention.project_qkv, layers.MLP.__call__


def project_qkv(self, x, positions, inv_freq):
    """q, k, v from one matmul when the module holds `qkv` [d, H + 2 KVH, Dh] (llama: no biases, no qk norm)."""
    if not hasattr(self, "qkv"):
        return model_qkv(self, x, positions, inv_freq)
    h, kvh = self.cfg.num_attention_heads, self.cfg.num_key_value_heads
    y = layers.dense(x, self.qkv[...].astype(self.cfg.dtype))
    q, k, v = y[..., :h, :], y[..., h : h + kvh, :], y[..., h + kvh :, :]
    return layers.apply_rope(q, positions, inv_freq), layers.apply_rope(k, positions, inv_freq), v


def mlp(self, x):
    """SwiGLU with gate and up as one matmul when the module holds `gate_up` [d, 2 * mlp]."""
    if not hasattr(self, "gate_up"):
        return model_mlp(self, x)
    m, dt = self.cfg.intermediate_size, self.cfg.dtype
    y = layers.dense(x, self.gate_up[...].astype(dt))
    return layers.dense(jax.nn.silu(y[..., :m]) * y[..., m:], self.down_proj[...].astype(dt))


def fused_copy(model: models.Transformer) -> models.Transformer:
    """A copy of `model` whose layers hold `qkv` and `gate_up` in place of q/k/v_proj and gate/up_proj."""
    fused = nnx.clone(model)
    for layer in fused.layers:
        attn, ffn = layer.self_attn, layer.mlp
        attn.qkv = nnx.Param(jnp.concatenate([attn.q_proj[...], attn.k_proj[...], attn.v_proj[...]], axis=1))
        ffn.gate_up = nnx.Param(jnp.concatenate([ffn.gate_proj[...], ffn.up_proj[...]], axis=1))
        del attn.q_proj, attn.k_proj, attn.v_proj, ffn.gate_proj, ffn.up_proj
    return fused


def gradient_fn(model: models.Transformer, ids: jax.Array):
    """A compiled value-and-gradient of a loss on the logits of `ids`, and a call that times it."""
    graphdef, state = nnx.split(model)

    def loss(state):
        m = nnx.merge(graphdef, state)
        logits = m.logits(m.hidden_states(ids))
        return jnp.mean(jax.nn.log_softmax(logits)[..., 0])

    compiled = jax.jit(jax.value_and_grad(loss)).lower(state).compile()
    return lambda: jax.block_until_ready(compiled(state))


def wall(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summary(times: np.ndarray, column: int) -> str:
    """Column `column`'s speed over column 0: the median of the rounds' ratios and the ratio of the best times."""
    ratios = times[:, 0] / times[:, column]
    return f"{np.median(ratios):.2f}x median, {times[:, 0].min() / times[:, column].min():.2f}x best"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    layers.Attention.project_qkv, layers.MLP.__call__ = project_qkv, mlp
    hf, model = build_models(512, args.hidden, 4)
    bf16 = models.init_model(model.config.replace(dtype=jnp.bfloat16, param_dtype=jnp.bfloat16))
    hf_params.assign_hf_tensors(bf16, {k: v.numpy() for k, v in hf.state_dict().items()})
    variants = {"default": model, "fused": fused_copy(model), "bf16": bf16}
    print(
        f"tiny llama (4 layers, width {args.hidden}, vocab 512), 16-token prompts, {args.new_tokens} new tokens, "
        f"{os.cpu_count()} cores, jax {jax.__version__}; variants over the default f32 model, {args.rounds} rounds"
    )
    for batch in args.batch:
        prompts = np.random.default_rng(0).integers(1, 512, size=(batch, 16)).astype(np.int32)
        tokens = {}

        def decode(name, prompts=prompts, tokens=tokens):
            out = sampling.generate(variants[name], prompts, max_new_tokens=args.new_tokens, key=jax.random.key(0))
            tokens[name] = np.asarray(out.tokens)

        for name in variants:
            decode(name)  # compile
        same = {name: float((tokens[name] == tokens["default"]).mean()) for name in variants}
        times = np.array([[wall(lambda n=n: decode(n)) for n in variants] for _ in range(args.rounds)])
        rates = batch * args.new_tokens / times.min(axis=0)
        print(
            f"decode batch {batch:3d}: default {rates[0]:7.0f} tok/s | fused {rates[1]:7.0f} tok/s, "
            f"{summary(times, 1)}, same tokens {same['fused']:.1%} | bf16 {rates[2]:7.0f} tok/s, "
            f"{summary(times, 2)}, same tokens {same['bf16']:.1%}",
            flush=True,
        )
    ids = jnp.asarray(np.random.default_rng(1).integers(1, 512, size=(16, 128)), jnp.int32)
    steps = [gradient_fn(m, ids) for m in variants.values()]
    for step in steps:
        step()
    times = np.array([[wall(step) for step in steps] for _ in range(args.rounds)])
    print(
        f"gradient 16 x 128: default {times[:, 0].min() * 1e3:.0f} ms | fused {times[:, 1].min() * 1e3:.0f} ms, "
        f"{summary(times, 1)} | bf16 {times[:, 2].min() * 1e3:.0f} ms, {summary(times, 2)}"
    )


if __name__ == "__main__":
    main()
