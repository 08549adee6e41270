"""nsa_jax against transformers (PyTorch) on the same checkpoint: padded-batch logits and KV-cache decoding."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hf_reference import hf_logits, max_diff_on_real, padded_batch

from nsa_jax import models

TOL = 1e-4


@pytest.mark.parametrize("layout", ["single", "sharded"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_logits_match_transformers(checkpoint, layout, side):
    model = models.from_pretrained(getattr(checkpoint, layout))
    ids, mask = padded_batch(side)
    ours = model(jnp.asarray(ids), attention_mask=jnp.asarray(mask))
    diff = max_diff_on_real(ours, hf_logits(checkpoint.hf, ids, mask), mask)
    print(f"{checkpoint.family} {layout} {side}-padded: max |logit diff| = {diff:.2e}")
    assert diff < TOL


def test_kv_cache_decoding_matches_full_forward(checkpoint):
    """Prefill a left-padded prompt, then feed one token at a time: every step equals the full pass."""
    model = models.from_pretrained(checkpoint.single)
    ids, prompt_mask = padded_batch("left", seed=1)
    prompt_len, extra = ids.shape[1], 6
    ids = np.concatenate([ids, np.random.default_rng(2).integers(0, 64, (3, extra))], axis=1).astype(np.int32)
    mask = np.concatenate([prompt_mask, np.ones((3, extra), np.int32)], axis=1)
    positions = models.positions_from_mask(jnp.asarray(mask))
    full = np.asarray(model(jnp.asarray(ids), attention_mask=jnp.asarray(mask)))

    cache = model.init_cache(batch_size=3, max_len=ids.shape[1] + 2)
    hidden, cache = model.forward(ids[:, :prompt_len], positions[:, :prompt_len], mask[:, :prompt_len], cache)
    steps = [model.logits(hidden)]
    for t in range(prompt_len, ids.shape[1]):
        hidden, cache = model.forward(ids[:, t : t + 1], positions[:, t : t + 1], mask[:, t : t + 1], cache)
        steps.append(model.logits(hidden))
    decoded = np.concatenate([np.asarray(s) for s in steps], axis=1)
    diff = max_diff_on_real(decoded, full, mask)
    print(f"{checkpoint.family} kv-cache vs full: max |logit diff| = {diff:.2e}")
    assert diff < TOL
