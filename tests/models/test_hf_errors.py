"""Every kind of bad checkpoint fails with a CheckpointError (or UnsupportedModelError) naming the file or tensor."""

from __future__ import annotations

import json
import shutil

import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy
from hf_reference import random_hf_model

from nsa_jax import models

WEIGHTS = "model.safetensors"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("qwen2") / "ckpt"
    random_hf_model("qwen2").save_pretrained(path)
    return path


@pytest.fixture
def ckpt(saved, tmp_path):
    """A fresh copy of a valid (tied, qwen2) checkpoint for each test to break."""
    return shutil.copytree(saved, tmp_path / "ckpt")


def _edit_config(path, **changes):
    cfg = json.loads((path / "config.json").read_text())
    cfg.update(changes)
    (path / "config.json").write_text(json.dumps(cfg))


def _edit_tensors(path, edit):
    tensors = safetensors.numpy.load_file(path / WEIGHTS)
    edit(tensors)
    safetensors.numpy.save_file(tensors, path / WEIGHTS, metadata={"format": "pt"})


def test_missing_directory(tmp_path):
    with pytest.raises(models.CheckpointError, match="nowhere: checkpoint directory not found"):
        models.from_pretrained(tmp_path / "nowhere")


def test_missing_config(ckpt):
    (ckpt / "config.json").unlink()
    with pytest.raises(models.CheckpointError, match=r"config\.json: file not found"):
        models.from_pretrained(ckpt)


def test_malformed_config(ckpt):
    (ckpt / "config.json").write_text('{"model_type": "qwen2",\n  "vocab_size": }')
    with pytest.raises(models.CheckpointError, match=r"config\.json: malformed JSON at line 2"):
        models.from_pretrained(ckpt)


def test_config_missing_key(ckpt):
    cfg = json.loads((ckpt / "config.json").read_text())
    del cfg["hidden_size"]
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(models.CheckpointError, match=r"config\.json: required key 'hidden_size' is missing"):
        models.from_pretrained(ckpt)


def test_unsupported_model_type(ckpt):
    _edit_config(ckpt, model_type="gpt2")
    with pytest.raises(models.UnsupportedModelError, match=r"config\.json: model_type 'gpt2' is not supported"):
        models.from_pretrained(ckpt)


def test_no_weights(ckpt):
    (ckpt / WEIGHTS).unlink()
    with pytest.raises(models.CheckpointError, match=r"no weights found \(neither model\.safetensors nor"):
        models.from_pretrained(ckpt)


def test_index_names_missing_shard(ckpt):
    index = {"weight_map": {"model.embed_tokens.weight": "model-00002-of-00002.safetensors"}}
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(models.CheckpointError, match=r"model-00002-of-00002\.safetensors: weights file listed in"):
        models.from_pretrained(ckpt)


def test_index_names_tensor_not_in_shard(ckpt):
    index = {"weight_map": {"model.not_there.weight": WEIGHTS}}
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(models.CheckpointError, match=r"model\.safetensors: tensor model\.not_there\.weight listed"):
        models.from_pretrained(ckpt)


def test_corrupt_weights_file(ckpt):
    (ckpt / WEIGHTS).write_bytes(b"\xff" * 64)
    with pytest.raises(models.CheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        models.from_pretrained(ckpt)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.pop("model.layers.1.mlp.up_proj.weight"),
            r"1 missing tensor\(s\): model\.layers\.1\.mlp\.up_proj\.weight",
        ),
        (
            lambda t: t.update({"model.layers.0.extra.weight": np.zeros(3, np.float32)}),
            r"model\.safetensors: 1 unexpected tensor\(s\): model\.layers\.0\.extra\.weight",
        ),
        (
            lambda t: t.update({"model.norm.weight": np.ones(31, np.float32)}),
            r"model\.safetensors: tensor model\.norm\.weight has shape \(31,\), .* implies \(32,\)",
        ),
        (
            lambda t: t.update({"model.norm.weight": np.ones(32, np.int32)}),
            r"model\.safetensors: tensor model\.norm\.weight has dtype I32; supported: F64",
        ),
    ],
    ids=["missing", "unexpected", "shape", "dtype"],
)
def test_bad_tensors(ckpt, edit, message):
    _edit_tensors(ckpt, edit)
    with pytest.raises(models.CheckpointError, match=message):
        models.from_pretrained(ckpt)


def test_tied_checkpoint_may_carry_lm_head(ckpt):
    _edit_tensors(ckpt, lambda t: t.update({"lm_head.weight": t["model.embed_tokens.weight"]}))
    assert models.from_pretrained(ckpt).config.tie_word_embeddings


def test_save_rejects_integer_dtype(ckpt, tmp_path):
    model = models.from_pretrained(ckpt)
    with pytest.raises(models.CheckpointError, match=r"tensor model\.embed_tokens\.weight: dtype int32 cannot be"):
        models.save_pretrained(model, tmp_path / "out", dtype=jnp.int32)
    assert not (tmp_path / "out").exists()
