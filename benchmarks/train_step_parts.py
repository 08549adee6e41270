"""Where the JAX train step loses to PyTorch eager: the same parts timed on both sides, same model and batch, same run.

Parts (the tiny model and `benchmarks/train_step.py`'s batch): the decoder's forward to the hidden states, the GRPO
loss (forward, log-probs, loss), the loss's gradient, the hidden states' gradient without the loss, and the three
products of one [2048, 128] x [128, 384] projection (the MLP's gate/up at this batch): the forward x @ W, the input
gradient dy @ W^T and the weight gradient x^T @ dy. JAX: each part jitted; PyTorch: eager, 2 threads. Each figure is
the best of 3 rounds of `--steps` calls.

    python benchmarks/train_step_parts.py [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # for `benchmarks`

import jax
import jax.numpy as jnp
import numpy as np
import torch
import transformers
from flax import nnx

from benchmarks.sampling import timed
from benchmarks.train_step import jax_grpo_loss, make_batch, torch_grpo_loss
from nsa_jax import models


def best_ms(fn, steps: int) -> float:
    """Best mean milliseconds per call over 3 rounds of `steps` calls, after 2 warm-up calls (compilation)."""
    for _ in range(2):
        jax.block_until_ready(fn())
    return timed(lambda: jax.block_until_ready([fn() for _ in range(steps)]), 3) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(models.tiny_model_dir(os.path.join(tmp, "model")))
        batch = make_batch(16, 128, models.load_config(path).vocab_size)
        graphdef, params = nnx.split(models.from_pretrained(path), nnx.Param)
        hf = transformers.LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    jb = {k: jnp.asarray(v) for k, v in batch.items()}
    tb = {k: torch.from_numpy(v) for k, v in batch.items()}
    ids = tb["input_ids"].long()

    def jax_hidden(p):
        model = nnx.merge(graphdef, p)
        return model.hidden_states(jb["input_ids"], attention_mask=jb["attention_mask"]).sum()

    def jax_loss(p):
        term, _ = jax_grpo_loss(nnx.merge(graphdef, p), jb, None, group=4)
        return term.total / term.denom

    def torch_hidden():
        return hf.model(input_ids=ids, attention_mask=tb["attention_mask"]).last_hidden_state.sum()

    def torch_loss():
        logits = hf(input_ids=ids, attention_mask=tb["attention_mask"]).logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]
        return torch_grpo_loss(logp, tb["logp_old"], tb["rewards"], tb["mask"], 4)

    def torch_grad(fn):
        def run():
            hf.zero_grad(set_to_none=True)
            value = fn()
            value.backward()
            return value

        return run

    def no_grad(fn):
        def run():
            with torch.no_grad():
                return fn()

        return run

    x, w = jax.random.normal(jax.random.key(0), (2048, 128)), jax.random.normal(jax.random.key(1), (128, 384))
    dy = jax.random.normal(jax.random.key(2), (2048, 384))
    xt, wt, dyt = (torch.from_numpy(np.array(a)) for a in (x, w, dy))

    def on_arrays(fn):  # the arrays as arguments: closed over, XLA would fold the product into a constant
        compiled = jax.jit(fn)
        return lambda: compiled(x, w, dy)

    products = {
        "x @ W": (on_arrays(lambda x, w, dy: x @ w), lambda: xt @ wt),
        "dy @ W^T (input gradient)": (on_arrays(lambda x, w, dy: dy @ w.T), lambda: dyt @ wt.T),
        "x^T @ dy (weight gradient)": (on_arrays(lambda x, w, dy: x.T @ dy), lambda: xt.T @ dyt),
    }

    def on_params(fn):
        compiled = jax.jit(fn)
        return lambda: compiled(params)

    parts = [
        ("forward to hidden states (no grad)", on_params(jax_hidden), no_grad(torch_hidden), 1),
        ("GRPO loss (torch: grad-enabled)", on_params(jax_loss), torch_loss, 1),
        ("gradient of the GRPO loss", on_params(jax.grad(jax_loss)), torch_grad(torch_loss), 1),
        ("gradient of hidden.sum()", on_params(jax.grad(jax_hidden)), torch_grad(torch_hidden), 1),
    ] + [(f"projection {name}", ours, theirs, 5) for name, (ours, theirs) in products.items()]
    print(f"tiny model, batch 16 x 128, best of 3 rounds of {args.steps} calls; ratio = torch ms / jax ms")
    for name, ours, theirs, scale in parts:
        jax_ms, torch_ms = best_ms(ours, args.steps * scale), best_ms(theirs, args.steps * scale)
        print(f"{name:40s} jax {jax_ms:8.2f} ms   torch {torch_ms:8.2f} ms   ratio {torch_ms / jax_ms:.2f}x")


if __name__ == "__main__":
    main()
