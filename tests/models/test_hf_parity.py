"""nsa_jax against transformers (PyTorch) on the same checkpoint: padded-batch logits and KV-cache decoding."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from hf_reference import VOCAB, forward_step, hf_logits, logits_of, max_diff_on_real, nsa_logits, padded_batch

from nsa_jax import models

TOL = 1e-4


@pytest.mark.parametrize("layout", ["single", "sharded"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_logits_match_transformers(checkpoint, layout, side):
    model = models.from_pretrained(getattr(checkpoint, layout))
    ids, mask = padded_batch(side)
    ours = nsa_logits(model, ids, mask)
    diff = max_diff_on_real(ours, hf_logits(checkpoint.hf, ids, mask), mask)
    print(f"{checkpoint.family} {layout} {side}-padded: max |logit diff| = {diff:.2e}")
    assert diff < TOL


def test_kv_cache_decoding_matches_full_forward(checkpoint):
    """Prefill a left-padded prompt, then feed one token at a time: every step equals the full pass."""
    model = models.from_pretrained(checkpoint.single)
    ids, mask = padded_batch("left", seed=1)  # the 5 rightmost tokens of every row are real: the decoded part
    prompt_len = ids.shape[1] - 5
    positions = models.positions_from_mask(jnp.asarray(mask))
    full = nsa_logits(model, ids, mask)

    cache = model.init_cache(batch_size=3, max_len=ids.shape[1] + 2)
    hidden, cache = forward_step(model, ids[:, :prompt_len], positions[:, :prompt_len], mask[:, :prompt_len], cache)
    steps = [logits_of(model, hidden)]
    for t in range(prompt_len, ids.shape[1]):
        hidden, cache = forward_step(model, ids[:, t : t + 1], positions[:, t : t + 1], mask[:, t : t + 1], cache)
        steps.append(logits_of(model, hidden))
    decoded = np.concatenate([np.asarray(s) for s in steps], axis=1)
    diff = max_diff_on_real(decoded, full, mask)
    print(f"{checkpoint.family} kv-cache vs full: max |logit diff| = {diff:.2e}")
    assert diff < TOL


def test_parameter_gradients_match_transformers(checkpoint):
    """The gradient of a weighted sum of the real positions' logits with respect to every parameter equals the one
    torch autograd gives the reference: the hand-written backward passes (`layers.swiglu`) and RoPE's form
    (`layers.apply_rope`) against PyTorch's."""
    ids, mask = padded_batch("left", seed=2)
    weights = np.random.default_rng(3).normal(size=(*ids.shape, VOCAB)).astype(np.float32) * mask[..., None]

    hf = checkpoint.hf
    hf.zero_grad(set_to_none=True)
    positions = np.maximum(np.cumsum(mask, axis=-1) - 1, 0)
    logits = hf(
        input_ids=torch.tensor(ids, dtype=torch.long),
        attention_mask=torch.tensor(mask, dtype=torch.long),
        position_ids=torch.tensor(positions, dtype=torch.long),
    ).logits
    (logits * torch.from_numpy(weights)).sum().backward()
    expected = {name: p.grad.numpy() for name, p in hf.named_parameters()}
    hf.zero_grad(set_to_none=True)

    model = models.from_pretrained(checkpoint.single)
    loss = lambda m: jnp.sum(m(jnp.asarray(ids), attention_mask=jnp.asarray(mask)) * weights)
    grads = nnx.jit(nnx.grad(loss))(model)
    graphdef, _ = nnx.split(model)
    ours = models.hf_params.to_hf_tensors(nnx.merge(graphdef, grads))
    assert set(expected) <= set(ours)
    for name, want in expected.items():
        scale = max(float(np.abs(want).max()), 1e-3)
        diff = float(np.abs(ours[name] - want).max())
        assert diff < 1e-4 * scale, f"{checkpoint.family} {name}: max |grad diff| {diff:.2e} (scale {scale:.2e})"
