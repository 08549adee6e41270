"""Fixtures: each family's tiny random reference checkpoint, saved by transformers as one file and as shards."""

from __future__ import annotations

import pytest
from hf_reference import FAMILIES, Checkpoint, random_hf_model


@pytest.fixture(scope="session", params=list(FAMILIES))
def checkpoint(request, tmp_path_factory) -> Checkpoint:
    family = request.param
    hf = random_hf_model(family)
    root = tmp_path_factory.mktemp(family)
    hf.save_pretrained(root / "single")
    hf.save_pretrained(root / "sharded", max_shard_size="40KB")
    assert (root / "sharded" / "model.safetensors.index.json").is_file()
    return Checkpoint(family, hf, root / "single", root / "sharded")
