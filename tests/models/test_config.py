"""The model config sits in the static part of every compiled program (inside the model's graph definition), so it
must hash and compare by value for every family's real `config.json` layout (dict rope scaling, list EOS ids)."""

import pytest
from flax import nnx
from hf_reference import FAMILIES

from nsa_jax import models


@pytest.mark.parametrize("family", list(FAMILIES))
def test_config_and_graph_definition_hash_by_value(family):
    hf = FAMILIES[family]().to_dict()
    hf["eos_token_id"] = [2, 7]  # Llama 3 Instruct style: a list
    a, b = models.ModelConfig.from_hf(hf), models.ModelConfig.from_hf(dict(hf))
    assert hash(a) == hash(b) and a == b
    assert a.eos_ids == (2, 7)
    graphdef = nnx.graphdef(models.init_model(a, seed=0))
    assert hash(graphdef) == hash(nnx.graphdef(models.init_model(b, seed=1)))  # weights are not static
    back = a.to_hf()  # and the HF layout comes back as dicts and lists
    if family == "llama":
        assert back["rope_scaling"]["rope_type"] == "llama3" and back["rope_parameters"]["factor"] == 8.0
    assert back["eos_token_id"] == [2, 7]
