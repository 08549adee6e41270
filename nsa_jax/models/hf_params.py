"""The one table between nsa_jax parameter paths and Hugging Face tensor names, with the reshapes between them.

HF stores a linear layer as weight [out, in]; nsa_jax stores kernels as [in, ...out] with heads split out
(q: [d, H, Dh], o: [H, Dh, d]) so the heads axis can be sharded by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np
from flax import nnx

from nsa_jax.models.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class Conversion:
    hf_name: str
    from_hf: Callable[[np.ndarray], np.ndarray]
    to_hf: Callable[[np.ndarray], np.ndarray]


def _same(x):
    return x


def _linear(*out_shape: int) -> tuple[Callable, Callable]:
    """HF [out, in] <-> nsa_jax [in, *out_shape]."""
    return (lambda w: w.T.reshape(w.shape[1], *out_shape)), (lambda k: k.reshape(k.shape[0], -1).T)


def _linear_in(*in_shape: int) -> tuple[Callable, Callable]:
    """HF [out, in] <-> nsa_jax [*in_shape, out] (the attention output projection)."""
    return (lambda w: w.T.reshape(*in_shape, w.shape[0])), (lambda k: k.reshape(-1, k.shape[-1]).T)


def _bias(*shape: int) -> tuple[Callable, Callable]:
    return (lambda b: b.reshape(*shape)), (lambda b: b.reshape(-1))


def param_table(cfg: ModelConfig) -> dict[tuple, Conversion]:
    """nsa_jax parameter path (as in `nnx.to_flat_state`) -> how it is named and shaped in an HF checkpoint."""
    h, kvh, dh = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    table = {("embed_tokens",): Conversion("model.embed_tokens.weight", _same, _same)}
    table[("norm", "weight")] = Conversion("model.norm.weight", _same, _same)
    if not cfg.tie_word_embeddings:
        table[("lm_head",)] = Conversion("lm_head.weight", np.transpose, np.transpose)
    for i in range(cfg.num_hidden_layers):
        pre = f"model.layers.{i}."
        per_layer = {
            ("self_attn", "q_proj"): ("self_attn.q_proj.weight", *_linear(h, dh)),
            ("self_attn", "k_proj"): ("self_attn.k_proj.weight", *_linear(kvh, dh)),
            ("self_attn", "v_proj"): ("self_attn.v_proj.weight", *_linear(kvh, dh)),
            ("self_attn", "o_proj"): ("self_attn.o_proj.weight", *_linear_in(h, dh)),
            ("mlp", "gate_proj"): ("mlp.gate_proj.weight", np.transpose, np.transpose),
            ("mlp", "up_proj"): ("mlp.up_proj.weight", np.transpose, np.transpose),
            ("mlp", "down_proj"): ("mlp.down_proj.weight", np.transpose, np.transpose),
            ("input_layernorm", "weight"): ("input_layernorm.weight", _same, _same),
            ("post_attention_layernorm", "weight"): ("post_attention_layernorm.weight", _same, _same),
        }
        if cfg.attention_bias:
            per_layer[("self_attn", "q_bias")] = ("self_attn.q_proj.bias", *_bias(h, dh))
            per_layer[("self_attn", "k_bias")] = ("self_attn.k_proj.bias", *_bias(kvh, dh))
            per_layer[("self_attn", "v_bias")] = ("self_attn.v_proj.bias", *_bias(kvh, dh))
        if cfg.qk_norm:
            per_layer[("self_attn", "q_norm", "weight")] = ("self_attn.q_norm.weight", _same, _same)
            per_layer[("self_attn", "k_norm", "weight")] = ("self_attn.k_norm.weight", _same, _same)
        if cfg.mlp_bias:
            per_layer[("mlp", "gate_bias")] = ("mlp.gate_proj.bias", _same, _same)
            per_layer[("mlp", "up_bias")] = ("mlp.up_proj.bias", _same, _same)
            per_layer[("mlp", "down_bias")] = ("mlp.down_proj.bias", _same, _same)
        for path, (name, from_hf, to_hf) in per_layer.items():
            table[("layers", i, *path)] = Conversion(pre + name, from_hf, to_hf)
    return table


def model_param_paths(model: nnx.Module) -> list[tuple]:
    """The model's parameter paths, in the form `param_table` uses (ints for list indices)."""
    return [tuple(path) for path, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))]


def to_hf_tensors(model: nnx.Module) -> dict[str, np.ndarray]:
    """All parameters as HF-named numpy arrays (in the parameter dtype)."""
    table = param_table(model.config)
    out = {}
    for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        conv = table[tuple(path)]
        out[conv.hf_name] = np.ascontiguousarray(conv.to_hf(np.asarray(var[...])))
    return out


def assign_hf_tensors(model: nnx.Module, tensors: Mapping[str, np.ndarray]) -> None:
    """Copies HF-named numpy tensors into the model in place (no checks: the loader validates names and shapes)."""
    table = param_table(model.config)
    for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        conv = table[tuple(path)]
        var[...] = conv.from_hf(np.asarray(tensors[conv.hf_name])).astype(var[...].dtype)
