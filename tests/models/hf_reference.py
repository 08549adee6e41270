"""Tiny random checkpoints of each supported family, built and saved by transformers (PyTorch), the reference."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import torch
import transformers
from flax import nnx

VOCAB = 64
_COMMON = dict(  # noqa: C408
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
)
# One config per family, each exercising what makes that family different.
FAMILIES = {
    # Llama 3.1-style rope scaling with a short original context so all three frequency bands occur; untied head.
    "llama": lambda: transformers.LlamaConfig(
        **_COMMON,
        tie_word_embeddings=False,
        mlp_bias=True,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
        },
    ),
    # q/k/v biases and tied embeddings.
    "qwen2": lambda: transformers.Qwen2Config(**_COMMON, tie_word_embeddings=True),
    # Per-head q/k RMSNorm and head_dim 16 != hidden_size / heads = 8.
    "qwen3": lambda: transformers.Qwen3Config(**_COMMON, head_dim=16, tie_word_embeddings=True),
}


@dataclasses.dataclass
class Checkpoint:
    family: str
    hf: transformers.PreTrainedModel  # the reference model, eval mode, float32
    single: Path  # saved as one model.safetensors
    sharded: Path  # saved as several shards + model.safetensors.index.json


def random_hf_model(family: str, seed: int = 0) -> transformers.PreTrainedModel:
    """A transformers model with every weight random, norms near 1 and biases non-zero, so none is a no-op."""
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(FAMILIES[family]()).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.2)
    return model


def padded_batch(side: str, seed: int = 0, length: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Random ids [3, T] and a {0,1} mask [3, T] whose rows have 0, 3 and 5 pads on `side` ("left" or "right")."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, (3, length)).astype(np.int32)
    mask = np.ones((3, length), np.int32)
    for row, pads in enumerate([0, 3, 5]):
        if side == "left":
            mask[row, :pads] = 0
        else:
            mask[row, length - pads :] = 0
    return ids, mask


def hf_logits(hf, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reference logits [B, T, V] from transformers, with positions counting only real tokens (as nsa_jax does)."""
    positions = np.maximum(np.cumsum(mask, axis=-1) - 1, 0)
    with torch.no_grad():
        out = hf(
            input_ids=torch.tensor(ids, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
            position_ids=torch.tensor(positions, dtype=torch.long),
        )
    return out.logits.float().numpy()


def max_diff_on_real(a, b, mask: np.ndarray) -> float:
    """max |a - b| over the positions where mask is 1 (pads carry no meaning)."""
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))[mask.astype(bool)].max())


# Compiled once per architecture and shape: eager op-by-op dispatch would dominate the test time.
_forward = nnx.jit(lambda model, ids, mask: model(ids, attention_mask=mask))
forward_step = nnx.jit(lambda model, ids, positions, mask, cache: model.forward(ids, positions, mask, cache))
logits_of = nnx.jit(lambda model, hidden: model.logits(hidden))


def nsa_logits(model, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """nsa_jax logits [B, T, V] of a padded batch."""
    return np.asarray(_forward(model, jnp.asarray(ids), jnp.asarray(mask)))
