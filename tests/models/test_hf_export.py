"""nsa_jax -> HF export: transformers loads it unchanged, and HF -> nsa_jax -> HF is bitwise lossless."""

from __future__ import annotations

import json

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import safetensors.numpy
import torch
import transformers
from hf_reference import hf_logits, padded_batch, random_hf_model

from nsa_jax import models
from nsa_jax.models import hf_io


def _load_hf(path) -> transformers.PreTrainedModel:
    """transformers' own loader, failing on any missing, unexpected or mismatched key."""
    hf, info = transformers.AutoModelForCausalLM.from_pretrained(path, output_loading_info=True)
    assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    return hf.eval()


def _all_tensors(path) -> dict[str, np.ndarray]:
    names = hf_io.tensor_index(path)
    return {name: hf_io.read_tensor(file, name) for name, (file, _, _) in names.items()}


def test_export_reloads_in_transformers_bitwise(checkpoint, tmp_path):
    model = models.from_pretrained(checkpoint.sharded)
    out = models.save_pretrained(model, tmp_path / "export", tokenizer_from=checkpoint.single)
    original, exported = _all_tensors(checkpoint.single), _all_tensors(out)
    if model.config.tie_word_embeddings:
        original.pop("lm_head.weight", None)
    assert sorted(exported) == sorted(original)
    for name, value in original.items():
        assert exported[name].dtype == value.dtype and np.array_equal(exported[name], value), name
    with safetensors.safe_open(out / "model.safetensors", framework="numpy") as f:
        assert f.metadata() == {"format": "pt"}

    reloaded = _load_hf(out)
    ids, mask = padded_batch("left")
    np.testing.assert_array_equal(hf_logits(reloaded, ids, mask), hf_logits(checkpoint.hf, ids, mask))


def test_bf16_checkpoint_stays_bitwise_bf16(tmp_path):
    hf = random_hf_model("qwen2").to(torch.bfloat16)
    hf.save_pretrained(tmp_path / "hf")
    model = models.from_pretrained(tmp_path / "hf", dtype=jnp.bfloat16, param_dtype=jnp.bfloat16)
    assert model.embed_tokens[...].dtype == jnp.bfloat16
    out = models.save_pretrained(model, tmp_path / "export")
    original, exported = _all_tensors(tmp_path / "hf"), _all_tensors(out)
    original.pop("lm_head.weight", None)
    for name, value in original.items():
        assert value.dtype == ml_dtypes.bfloat16 and exported[name].dtype == ml_dtypes.bfloat16, name
        assert np.array_equal(exported[name].view(np.uint16), value.view(np.uint16)), name
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"
    assert _load_hf(out).model.embed_tokens.weight.dtype == torch.bfloat16


def test_raw_bf16_reader_matches_safetensors(tmp_path):
    """The fallback for safetensors versions without numpy bfloat16 decodes the same values."""
    tensors = {
        "a": np.arange(12, dtype=np.float32).reshape(3, 4).astype(ml_dtypes.bfloat16),
        "b": np.linspace(-1, 1, 5, dtype=np.float32),
    }
    safetensors.numpy.save_file(tensors, tmp_path / "t.safetensors")
    for name, value in tensors.items():
        raw = hf_io.read_raw_tensor(tmp_path / "t.safetensors", name)
        assert raw.dtype == value.dtype and np.array_equal(raw, value)


def test_save_replaces_existing_directory_whole(checkpoint, tmp_path):
    model = models.from_pretrained(checkpoint.single)
    out = tmp_path / "export"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    models.save_pretrained(model, out, dtype=jnp.bfloat16)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no temporary directories left behind
    assert models.from_pretrained(out, param_dtype=jnp.bfloat16).embed_tokens[...].dtype == jnp.bfloat16
