"""Flax NNX decoder (Llama 3, Qwen2/2.5, Qwen3), KV cache, and Hugging Face checkpoint import/export."""

from nsa_jax.models.config import SUPPORTED_MODEL_TYPES, ModelConfig, UnsupportedModelError
from nsa_jax.models.hf_io import CheckpointError, from_pretrained, load_config, save_pretrained
from nsa_jax.models.tiny import tiny_model_dir
from nsa_jax.models.tokenizer import load_tokenizer
from nsa_jax.models.transformer import KVCache, Transformer, init_model, positions_from_mask

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "CheckpointError",
    "KVCache",
    "ModelConfig",
    "Transformer",
    "UnsupportedModelError",
    "from_pretrained",
    "init_model",
    "load_config",
    "load_tokenizer",
    "positions_from_mask",
    "save_pretrained",
    "tiny_model_dir",
]
