"""Flax NNX decoder (Llama 3, Qwen2/2.5, Qwen3), KV cache, a scalar head (PRM / reward model), and Hugging Face
checkpoint import/export."""

from nsa_jax.models.config import SUPPORTED_MODEL_TYPES, ModelConfig, UnsupportedModelError
from nsa_jax.models.heads import ScalarHead, from_pretrained_head, last_token_scores, save_head, sequence_scores
from nsa_jax.models.hf_io import CheckpointError, from_pretrained, load_config, save_pretrained
from nsa_jax.models.packing import Packing, packed_width
from nsa_jax.models.tiny import tiny_model_dir
from nsa_jax.models.tokenizer import check_same_vocabulary, encode_rows, load_tokenizer
from nsa_jax.models.transformer import KVCache, PrefixKV, Transformer, init_model, positions_from_mask

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "CheckpointError",
    "KVCache",
    "ModelConfig",
    "Packing",
    "PrefixKV",
    "ScalarHead",
    "Transformer",
    "UnsupportedModelError",
    "check_same_vocabulary",
    "encode_rows",
    "from_pretrained",
    "from_pretrained_head",
    "init_model",
    "last_token_scores",
    "load_config",
    "load_tokenizer",
    "packed_width",
    "positions_from_mask",
    "save_head",
    "save_pretrained",
    "sequence_scores",
    "tiny_model_dir",
]
