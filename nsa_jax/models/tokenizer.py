"""Tokenizers from local HF directories, and the built-in character-level tokenizer of the tiny models.

transformers' AutoTokenizer picks the tokenizer class from the model's `config.json` for some model types (qwen2
among them) and ignores `tokenizer_class` in `tokenizer_config.json`: a plain `tokenizers` tokenizer saved next to
a qwen2 config then reloads as a Qwen2Tokenizer that silently drops spaces. `load_tokenizer` therefore honours a
declared generic class (`PreTrainedTokenizerFast`) itself and leaves everything else to AutoTokenizer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import tokenizers
import transformers
from tokenizers import decoders

from nsa_jax.models.hf_io import CheckpointError, checkpoint_dir, read_json

# A tokenizer_config.json declaring one of these means "exactly what tokenizer.json says", never a model's own class.
_GENERIC_CLASSES = ("PreTrainedTokenizerFast", "TokenizersBackend")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")

# The built-in tokenizer: one token per printable ASCII character (32..126) and newline, after the special tokens.
PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)  # ids 0, 1, 2, 3
CHARACTERS = ("\n", *(chr(c) for c in range(32, 127)))
CHAR_VOCAB_SIZE = len(SPECIAL_TOKENS) + len(CHARACTERS)
# A conversation is <bos>, then each user (or system) turn followed by a newline, each assistant turn by <eos>:
# "<bos>What is 2+3?\n5<eos>". A generation prompt needs nothing more: the model answers after the newline.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token }}{% else %}{{ message['content'] + '\\n' }}{% endif %}{% endfor %}"
)


def load_tokenizer(path: str | os.PathLike) -> transformers.PreTrainedTokenizerBase:
    """The tokenizer of a local HF directory (chat template included), via transformers, with no download."""
    path = checkpoint_dir(path)
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise CheckpointError(f"{path}: no tokenizer files (none of {', '.join(_TOKENIZER_FILES)})")
    config_file = path / "tokenizer_config.json"
    declared = read_json(config_file).get("tokenizer_class") if config_file.is_file() else None
    if declared in _GENERIC_CLASSES and (path / "tokenizer.json").is_file():
        return transformers.PreTrainedTokenizerFast.from_pretrained(path, local_files_only=True)
    return transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)


def check_same_vocabulary(path: str | os.PathLike, tokenizer, what: str) -> None:
    """A CheckpointError unless the tokenizer in `path` maps every token to the same id as `tokenizer`: a judge or
    reward model scores the policy's token ids directly, so its backbone must share the policy's vocabulary."""
    theirs = load_tokenizer(path)
    if theirs.get_vocab() != tokenizer.get_vocab():
        raise CheckpointError(
            f"{path}: the {what}'s tokenizer ({len(theirs.get_vocab())} tokens) is not the policy's "
            f"({len(tokenizer.get_vocab())} tokens); it reads the policy's token ids, so use a backbone of the same family"
        )


def build_char_tokenizer() -> tokenizers.Tokenizer:
    """The built-in character-level tokenizer (a merge-free BPE, so every character is its own token)."""
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *CHARACTERS))}
    tok = tokenizers.Tokenizer(tokenizers.models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    tok.decoder = decoders.Fuse()  # join characters back without inserting spaces
    tok.add_special_tokens([tokenizers.AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return tok


def char_tokenizer_files(model_max_length: int) -> dict[str, str]:
    """The built-in tokenizer as HF tokenizer files: file name -> content."""
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD, "unk_token": UNK}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **special,
        "model_max_length": model_max_length,
        "clean_up_tokenization_spaces": False,  # decode must give back exactly the text that was encoded
        "chat_template": CHAT_TEMPLATE,
    }
    return {
        "tokenizer.json": build_char_tokenizer().to_str(pretty=True) + "\n",
        "tokenizer_config.json": _dumps(config),
        "special_tokens_map.json": _dumps(special),
    }


def _dumps(obj: dict) -> str:
    return json.dumps(obj, indent=2) + "\n"


def encode_rows(
    tokenizer, prompts: Sequence[str], responses: Sequence[str], width: int, *, limit: str, error=ValueError
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prompt + response + EOS per row (no special tokens added), right-padded with the pad id (EOS, or 0, when the
    tokenizer has none) to `width`: (input_ids [N, width] int32, attention_mask [N, width] int32, the prompt's
    length in tokens [N], where each response starts). A row longer than `width` raises `error` naming the row and
    `limit` (the knob that sets the width), since cutting it would train on or score a truncated answer."""
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos or 0)
    ids = np.full((len(prompts), width), pad, np.int32)
    attention = np.zeros((len(prompts), width), np.int32)
    starts = np.zeros(len(prompts), np.int64)
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        head = tokenizer.encode(prompt, add_special_tokens=False)
        row = head + tokenizer.encode(response, add_special_tokens=False) + ([eos] if eos is not None else [])
        if len(row) > width:
            raise error(f"example {i} has {len(row)} tokens, more than {limit}: {prompt[:60]!r}...")
        ids[i, : len(row)], attention[i, : len(row)], starts[i] = row, 1, len(head)
    return ids, attention, starts
