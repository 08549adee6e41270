"""Choosing the built-in model by config: `model.builtin="tiny-wide"` loads that variant, in its own directory."""

import json
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from nsa_jax import models, parallel
from nsa_jax.models.tiny import TINY_DIR
from nsa_jax.train.core import load_policy, model_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from configs import base


def _config(workdir, builtin: str):
    config = base.get_config()
    config.workdir = str(workdir)
    config.model.builtin = builtin
    config.model.seed = 3
    return config


def test_builtin_tiny_wide_loads_the_wide_variant(tmp_path):
    path = model_dir(_config(tmp_path, "tiny-wide"))
    assert Path(path) == tmp_path / "tiny-wide_model"
    # The shipped config of the variant, read independently of the policy code.
    shipped = json.loads((TINY_DIR / "config.tiny-wide.json").read_text())
    assert models.load_config(path) == models.ModelConfig.from_hf(shipped)
    policy = load_policy(_config(tmp_path, "tiny-wide"), parallel.make_mesh(devices=jax.devices()[:1]), path)
    assert policy.config.hidden_size == 256 and policy.embed_tokens[...].shape[1] == 256
    # Weights are the variant's at model.seed: the same as a directory built directly with those arguments.
    ref = models.from_pretrained(models.tiny_model_dir(tmp_path / "ref", seed=3, variant="tiny-wide"))
    np.testing.assert_array_equal(np.asarray(policy.embed_tokens[...]), np.asarray(ref.embed_tokens[...]))


def test_switching_variant_in_one_workdir_does_not_reuse_the_other(tmp_path):
    tiny = model_dir(_config(tmp_path, "tiny"))
    wide = model_dir(_config(tmp_path, "tiny-wide"))
    assert Path(tiny) == tmp_path / "tiny_model"  # unchanged for the default, so existing runs resume as before
    assert tiny != wide
    assert (models.load_config(tiny).hidden_size, models.load_config(wide).hidden_size) == (128, 256)


def test_unknown_builtin_is_an_error_naming_the_variants(tmp_path):
    with pytest.raises(ValueError, match=r"model.builtin='huge' is unknown.*\['tiny', 'tiny-wide'\]"):
        model_dir(_config(tmp_path, "huge"))
    assert not any(tmp_path.iterdir())  # nothing written
