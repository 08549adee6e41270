"""The built-in tiny model: shipped files are current, and its directory loads alike in nsa_jax and transformers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tokenizers
import transformers
from hf_reference import hf_logits, max_diff_on_real, nsa_logits

from nsa_jax import models
from nsa_jax.models import tiny


def test_shipped_files_are_up_to_date(tmp_path):
    """Regenerate with `python -m nsa_jax.models.tiny` when this fails."""
    fresh = tiny.write_tiny_files(tmp_path)
    shipped = sorted(p.name for p in tiny.TINY_DIR.iterdir() if p.suffix == ".json")
    assert shipped == sorted(p.name for p in fresh.iterdir())
    for name in shipped:
        if name == "tokenizer.json":  # compared through the installed library, which owns the serialisation
            a, b = (tokenizers.Tokenizer.from_file(str(d / name)).to_str() for d in (tiny.TINY_DIR, fresh))
        else:
            a, b = (json.loads((d / name).read_text()) for d in (tiny.TINY_DIR, fresh))
        assert a == b, name


@pytest.mark.parametrize("variant", ["tiny", pytest.param("tiny-wide", marks=pytest.mark.slow)])
def test_tiny_model_dir_loads_alike_in_nsa_jax_and_transformers(tmp_path, variant):
    path = models.tiny_model_dir(tmp_path / variant, seed=3, variant=variant)
    tok = models.load_tokenizer(path)
    model = models.from_pretrained(path)
    cfg = model.config
    assert cfg.vocab_size == len(tok) and (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) == (0, 1, 2)
    assert cfg.hidden_size == {"tiny": 128, "tiny-wide": 256}[variant] and cfg.tie_word_embeddings

    texts = ["<bos>What is 12+30?\n42<eos>", "<bos>hi\n"]
    batch = tok(texts, padding=True, padding_side="left", return_tensors="np")
    ids, mask = batch["input_ids"].astype(np.int32), batch["attention_mask"].astype(np.int32)
    hf, info = transformers.AutoModelForCausalLM.from_pretrained(path, output_loading_info=True)
    assert not any(info.values()), info
    diff = max_diff_on_real(nsa_logits(model, ids, mask), hf_logits(hf.eval(), ids, mask), mask)
    print(f"{variant}: max |logit diff| vs transformers = {diff:.2e}")
    assert diff < 1e-4


def test_tiny_model_dir_is_idempotent_and_seeded(tmp_path):
    path = models.tiny_model_dir(tmp_path / "m", seed=0)
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert models.tiny_model_dir(tmp_path / "m", seed=0) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp  # not rewritten
    assert json.loads((path / "config.json").read_text()) == json.loads((tiny.TINY_DIR / "config.json").read_text())
    first = np.asarray(models.from_pretrained(path).embed_tokens[...])
    models.tiny_model_dir(tmp_path / "m", seed=1)  # another seed replaces the weights
    assert not np.array_equal(first, np.asarray(models.from_pretrained(path).embed_tokens[...]))
    with pytest.raises(ValueError, match="unknown tiny model variant 'huge'"):
        models.tiny_model_dir(tmp_path / "x", variant="huge")
