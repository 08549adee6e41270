"""Greedy decoding equals transformers' PyTorch `generate(do_sample=False)`, token for token, EOS included."""

import jax
import numpy as np
import pytest
import torch

from nsa_jax import sampling

PROMPTS = [[5, 9, 2, 33, 17, 8, 41], [12], [7, 7, 3, 60, 22, 1, 9, 50, 31, 4, 18, 26, 2], [40, 2, 19]]
NEW = 20


def _hf_greedy(hf, prompt: list[int], eos: int | None) -> list[int]:
    """HF greedy continuation of one unpadded prompt (batch 1, so no padding semantics are involved)."""
    with torch.no_grad():
        out = hf.generate(
            input_ids=torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            max_new_tokens=NEW,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=0,
        )
    return out[0, len(prompt) :].tolist()


@pytest.mark.parametrize("segments", ["one-segment", "segments-of-4"])
@pytest.mark.parametrize("family", ["llama", "llama3", "qwen2", pytest.param("qwen3", marks=pytest.mark.slow)])
def test_greedy_matches_transformers(tiny_pair, family, segments):
    """Also in decode segments of 4 tokens (the cache grown between them, finished rows dropped)."""
    buckets = sampling.Buckets(cache_block=4 if segments == "segments-of-4" else 64)
    hf, _ = tiny_pair(family)
    free = [_hf_greedy(hf, p, None) for p in PROMPTS]
    # EOS: a token prompt 0 emits mid-way, so at least that row stops early; rows that never emit it run to the end.
    eos = free[0][NEW // 3]
    assert any(eos not in row for row in free), "pick another EOS: every row would stop"
    hf, model = tiny_pair(family, eos=eos)
    expected = [_hf_greedy(hf, p, eos) for p in PROMPTS]

    out = sampling.generate(model, PROMPTS, max_new_tokens=NEW, key=jax.random.key(0), greedy=True, buckets=buckets)
    tokens, mask = np.asarray(out.tokens), np.asarray(out.mask).astype(bool)
    for row, want in enumerate(expected):
        assert tokens[row][mask[row]].tolist() == want, f"row {row}"
        assert out.stopped[row] == (eos in want)
    assert not np.asarray(out.stopped).all() and np.asarray(out.stopped).any()
