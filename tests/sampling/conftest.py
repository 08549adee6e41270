"""Tiny random transformers models with their nsa_jax twins (same weights), shared by the sampling tests.

The HF weights are drawn with std 0.2 (norm gains around 1) so logits spread over a few units: the argmax is not a
near-tie and the softmax is neither uniform nor one-hot, which both the parity and the frequency tests need.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

SIZES = {
    "vocab_size": 64,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


@functools.cache
def _pair(family: str, eos: int | None, vocab: int):
    import torch
    import transformers

    from nsa_jax import models
    from nsa_jax.models import hf_params

    torch.manual_seed({"llama": 0, "qwen2": 1, "qwen3": 2, "llama3": 3}[family])
    config_class = {
        "llama": transformers.LlamaConfig,
        "llama3": transformers.LlamaConfig,
        "qwen2": transformers.Qwen2Config,
        "qwen3": transformers.Qwen3Config,
    }[family]
    extra = {}
    if family == "llama3":  # Llama 3.1-style rope scaling, short original context so every frequency band occurs
        extra["rope_scaling"] = {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
        }
    hf_config = config_class(
        **{**SIZES, "vocab_size": vocab}, eos_token_id=eos, tie_word_embeddings=not family.startswith("llama"), **extra
    )
    hf = transformers.AutoModelForCausalLM.from_config(hf_config).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            p.normal_(0, 0.1 if "norm" in name else 0.2).add_(1.0 if "norm" in name else 0.0)
    model = models.init_model(models.ModelConfig.from_hf(hf_config.to_dict()))
    hf_params.assign_hf_tensors(model, {k: v.numpy() for k, v in hf.state_dict().items()})
    return hf, model


@pytest.fixture(scope="session")
def tiny_pair():
    """tiny_pair(family, eos=None, vocab=64) -> (transformers model, nsa_jax model) with identical weights; family
    "llama", "llama3" (llama3 rope scaling), "qwen2" or "qwen3"."""

    def make(family: str = "llama", eos: int | None = None, vocab: int = SIZES["vocab_size"]):
        return _pair(family, eos, vocab)

    return make


@functools.partial(jax.jit, static_argnums=0)
def _logits(graphdef, state, ids, mask):
    """One compiled forward per shape (the eager model call would compile every primitive separately)."""
    return nnx.merge(graphdef, state)(ids, attention_mask=mask)


@pytest.fixture(scope="session")
def teacher_forced_logits():
    """teacher_forced_logits(model, out) -> [B*n, N, V] numpy: the logits that predicted each response token."""

    def run(model, out) -> np.ndarray:
        ids = jnp.concatenate([out.prompt_tokens, out.tokens], axis=1)
        mask = jnp.concatenate([out.prompt_mask, out.mask], axis=1)
        logits = np.asarray(_logits(*nnx.split(model), ids, mask))  # [R, Pb + N, V]
        prompt_len, gen_len = out.prompt_tokens.shape[1], out.tokens.shape[1]
        return logits[:, prompt_len - 1 : prompt_len + gen_len - 1]

    return run
