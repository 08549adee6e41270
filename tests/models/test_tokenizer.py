"""The built-in character tokenizer: exact round trips, fixed special ids, chat template; robust to the qwen2 trap."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsa_jax import models
from nsa_jax.models import tiny, tokenizer

TEXTS = [
    "Hello, world!",
    "  two  leading spaces and trailing  ",
    "line one\nline two\n\n  indented\n",
    "12 + 30 = 42; 7*6=42 (ok?) [x] {y} <z> ~`|\\'\"#$%^&_",
    " . , ! ? spaces before punctuation .",
]


@pytest.fixture(scope="module")
def tok():
    return models.load_tokenizer(tiny.TINY_DIR)


@pytest.fixture(scope="module")
def tok_in_qwen2_dir(tmp_path_factory):
    """Our tokenizer files next to a qwen2 config.json, where AutoTokenizer would substitute Qwen2Tokenizer."""
    path = tmp_path_factory.mktemp("qwen2_tok")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(tiny.TINY_DIR / name, path / name)
    (path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    return models.load_tokenizer(path)


def test_special_ids_and_vocab(tok):
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert len(tok) == tokenizer.CHAR_VOCAB_SIZE == 100
    assert tok("a b\n")["input_ids"] == [tok.convert_tokens_to_ids(c) for c in "a b\n"]  # one token per character


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip(tok, tok_in_qwen2_dir, text):
    for t in (tok, tok_in_qwen2_dir):
        ids = t(text)["input_ids"]
        assert len(ids) == len(text)
        assert t.decode(ids) == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(tokenizer.CHARACTERS), max_size=80))
def test_round_trip_any_text(tok, text):
    assert tok.decode(tok(text)["input_ids"]) == text


def test_chat_template(tok):
    chat = [{"role": "user", "content": "What is 2+3?"}, {"role": "assistant", "content": "5"}]
    assert tok.apply_chat_template(chat, tokenize=False) == "<bos>What is 2+3?\n5<eos>"
    prompt = tok.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<bos>What is 2+3?\n"
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.decode(ids, skip_special_tokens=True) == "What is 2+3?\n"


def test_missing_tokenizer_files(tmp_path):
    with pytest.raises(models.CheckpointError, match="no tokenizer files"):
        models.load_tokenizer(tmp_path)
    with pytest.raises(models.CheckpointError, match="checkpoint directory not found"):
        models.load_tokenizer(tmp_path / "nowhere")


def test_encode_rows_right_pads_prompt_response_eos_and_names_a_long_row(tok):
    ids, attention, starts = models.encode_rows(tok, ["a=1\n", "b\n"], ["1", "22"], 8, limit="w=8")
    # The character tokenizer: ids 0-3 special (<pad>, <bos>, <eos>, <unk>), then "\n", then ASCII 32..126.
    char = {c: 4 + tokenizer.CHARACTERS.index(c) for c in "ab=12\n"}
    assert ids.tolist() == [
        [char["a"], char["="], char["1"], char["\n"], char["1"], 2, 0, 0],
        [char["b"], char["\n"], char["2"], char["2"], 2, 0, 0, 0],
    ]
    assert attention.tolist() == [[1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0]]
    assert starts.tolist() == [4, 2]
    with pytest.raises(KeyError, match=r"example 1 has 9 tokens, more than w=8"):
        models.encode_rows(tok, ["a\n", "long\n"], ["1", "123"], 8, limit="w=8", error=KeyError)
