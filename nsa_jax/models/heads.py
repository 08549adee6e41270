"""A scalar head on the decoder backbone: the process reward model (a score per step) and the outcome reward model (a
score per response) of the BCPG-NSA and PNS pipelines.

`ScalarHead(backbone)` scores every position, `s_t = w . h_t` with `h_t` the backbone's final normed hidden state;
a reward model reads the score of a response's last token, a PRM the score of each step's last token. It is saved
as a Hugging Face `<Family>ForSequenceClassification` directory with one label (`model.*` backbone tensors plus
`score.weight` [1, d], no bias), which `transformers.AutoModelForSequenceClassification` loads unchanged and whose
pooled output is the score of the last non-pad token. Loading a plain causal-LM directory gives a fresh head
(weights zero, so every score starts at 0) on that backbone: the start of PRM / RM training.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from nsa_jax.models.config import ModelConfig
from nsa_jax.models.hf_io import (
    CheckpointError,
    checkpoint_dir,
    from_pretrained,
    load_config,
    read_tensor,
    save_pretrained,
    tensor_index,
)
from nsa_jax.models.transformer import Transformer

SCORE_TENSOR = "score.weight"
_ARCHITECTURES = {
    "llama": "LlamaForSequenceClassification",
    "qwen2": "Qwen2ForSequenceClassification",
    "qwen3": "Qwen3ForSequenceClassification",
}


class ScalarHead(nnx.Module):
    """`head(ids, attention_mask=m)` -> [B, T] float32 scores, one per position (the backbone has no LM head)."""

    def __init__(self, backbone: Transformer, *, tied_source: bool = True):
        self.backbone = backbone
        self.config: ModelConfig = backbone.config
        self.tied_source = tied_source  # the source checkpoint's tie_word_embeddings, written back on save
        self.score = nnx.Param(jnp.zeros((self.config.hidden_size,), self.config.param_dtype), axes=("embed",))

    def __call__(self, input_ids: jax.Array, attention_mask: jax.Array | None = None) -> jax.Array:
        hidden = self.backbone.hidden_states(input_ids, attention_mask)
        w = self.score[...].astype(hidden.dtype)
        return jnp.einsum("btd,d->bt", hidden, w, preferred_element_type=jnp.float32)


def last_token_scores(scores: jax.Array, mask: jax.Array) -> jax.Array:
    """[B, T] scores -> [B]: the score at each row's last position where `mask` is set (0 for an empty row)."""
    t = jnp.arange(mask.shape[1])
    last = jnp.max(jnp.where(mask > 0, t, -1), axis=1)
    picked = jnp.take_along_axis(scores, jnp.maximum(last, 0)[:, None], axis=1)[:, 0]
    return jnp.where(last >= 0, picked, 0.0)


@nnx.jit
def sequence_scores(head: ScalarHead, input_ids: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """[B] the head's score at each row's last attended token (a response's EOS: the reward model's score)."""
    return last_token_scores(head(input_ids, attention_mask=attention_mask), attention_mask)


def from_pretrained_head(
    path: str | os.PathLike, *, dtype: Any = jnp.float32, param_dtype: Any = None, shardings: Any = None
) -> ScalarHead:
    """A `ScalarHead` from a saved head directory (its `score.weight`), or a fresh zero head on the backbone of a
    causal-LM directory. `shardings` places the backbone's parameters as in `models.from_pretrained`."""
    path = checkpoint_dir(path)
    tied = load_config(path).tie_word_embeddings
    backbone = from_pretrained(
        path, dtype=dtype, param_dtype=param_dtype, shardings=shardings, lm_head=False, extra_tensors=(SCORE_TENSOR,)
    )
    head = ScalarHead(backbone, tied_source=tied)
    found = tensor_index(path)
    if SCORE_TENSOR in found:
        file, _, shape = found[SCORE_TENSOR]
        if shape != (1, head.config.hidden_size):
            raise CheckpointError(f"{file}: {SCORE_TENSOR} has shape {shape}, expected (1, {head.config.hidden_size})")
        head.score[...] = jnp.asarray(read_tensor(file, SCORE_TENSOR)[0], head.score[...].dtype)
    return head


def save_head(head: ScalarHead, out_dir: str | os.PathLike, *, tokenizer_from: str | os.PathLike | None = None):
    """Writes `head` as a one-label `<Family>ForSequenceClassification` directory (atomically, as
    `save_pretrained`); returns out_dir."""
    hf = {
        "architectures": [_ARCHITECTURES[head.config.model_type]],
        "tie_word_embeddings": head.tied_source,
        "id2label": {"0": "LABEL_0"},
        "label2id": {"LABEL_0": 0},
    }
    score = np.asarray(jax.device_get(head.score[...]))[None, :]
    return save_pretrained(
        head.backbone, out_dir, tokenizer_from=tokenizer_from, hf_config=hf, extra_tensors={SCORE_TENSOR: score}
    )
