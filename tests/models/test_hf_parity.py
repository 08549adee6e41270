"""nsa_jax against transformers (PyTorch) on the same checkpoint: padded-batch logits and KV-cache decoding."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hf_reference import forward_step, hf_logits, logits_of, max_diff_on_real, nsa_logits, padded_batch

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
