"""Model configuration shared by the Llama 3, Qwen2/2.5 and Qwen3 families, and its mapping to HF `config.json`."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

# What distinguishes the families inside one decoder: Qwen2 has q/k/v biases, Qwen3 normalises q and k per head.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {"attention_bias": False, "qk_norm": False},
    "qwen2": {"attention_bias": True, "qk_norm": False},
    "qwen3": {"attention_bias": False, "qk_norm": True},
}
SUPPORTED_MODEL_TYPES = tuple(FAMILY_DEFAULTS)

# Activation rematerialisation (`ModelConfig.remat`): what each decoder layer keeps from the forward pass for the
# backward pass; everything else is recomputed there. None = no jax.checkpoint at all.
REMAT_POLICIES: dict[str, Any] = {
    "none": None,  # keep every activation (fastest, most memory)
    "full": jax.checkpoint_policies.nothing_saveable,  # keep only each layer's input; recompute the whole layer
    # keep the weight matmuls' outputs (q/k/v, o, MLP projections); recompute norms, RoPE, softmax, attention scores
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


# How attention scores are computed (`ModelConfig.attention`, `layers.Attention.attend`).
ATTENTION_IMPLS = ("dense", "chunked", "fused")


class UnsupportedModelError(ValueError):
    """The checkpoint's architecture is not one nsa_jax implements."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of the decoder-only transformer.

    Field names follow Hugging Face's `config.json` so a reader can match them one to one.
    `rope_scaling` is None (plain RoPE) or a mapping with `rope_type` in {"llama3", "linear", "default"} and that
    type's parameters, stored as a sorted tuple of `(name, value)` pairs (read it with `rope_scaling_dict`): the
    config sits in the static part of every compiled program (the model's graph definition), which must hash.
    `stop_token_ids` are the extra end-of-turn ids of `generation_config.json` (instruct checkpoints end a turn
    with them), where generation stops as at `eos_token_id`; they are not written back to `config.json`. `dtype` is the compute dtype, `param_dtype` the storage dtype of the weights; softmax and
    RMSNorm always run in float32. `remat` (a key of REMAT_POLICIES) trades recomputation for activation memory in
    the gradient of the cache-free forward; like the dtypes it is a compute choice, not part of `config.json`.
    So are `attention` (a name of ATTENTION_IMPLS) and `attention_chunk`, how attention scores are computed
    (`layers.Attention.attend`): by default in blocks of 512 queries, each recomputed in the backward pass.
    """

    model_type: str = "llama"
    vocab_size: int = 128
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 32
    rope_theta: float = 10000.0
    rope_scaling: tuple[tuple[str, Any], ...] | None = None
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = True
    attention_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    max_position_embeddings: int = 2048
    bos_token_id: int | None = None
    eos_token_id: int | tuple[int, ...] | None = None
    stop_token_ids: tuple[int, ...] = ()
    pad_token_id: int | None = None
    initializer_range: float = 0.02
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    remat: str = "none"
    attention: str = "chunked"
    attention_chunk: int = 512

    def __post_init__(self):
        # Hashable forms of the values HF gives as dicts and lists (see the class docstring).
        if isinstance(self.rope_scaling, dict):
            object.__setattr__(self, "rope_scaling", _frozen(self.rope_scaling))
        if isinstance(self.eos_token_id, list):
            object.__setattr__(self, "eos_token_id", tuple(self.eos_token_id))
        object.__setattr__(self, "stop_token_ids", tuple(self.stop_token_ids))
        if self.model_type not in FAMILY_DEFAULTS:
            raise UnsupportedModelError(
                f"model_type {self.model_type!r} is not supported; nsa_jax implements {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        if self.remat not in REMAT_POLICIES:
            raise ValueError(f"remat={self.remat!r} is not one of {', '.join(REMAT_POLICIES)}")
        if self.attention not in ATTENTION_IMPLS:
            raise ValueError(f"attention={self.attention!r} is not one of {', '.join(ATTENTION_IMPLS)}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads={self.num_attention_heads} is not a multiple of "
                f"num_key_value_heads={self.num_key_value_heads}"
            )

    @property
    def eos_ids(self) -> tuple[int, ...]:
        """Every id generation stops at: `eos_token_id` and `stop_token_ids`."""
        if self.eos_token_id is None:
            eos = ()
        elif isinstance(self.eos_token_id, int):
            eos = (self.eos_token_id,)
        else:
            eos = tuple(self.eos_token_id)
        return eos + tuple(t for t in self.stop_token_ids if t not in eos)

    @property
    def rope_scaling_dict(self) -> dict[str, Any]:
        """`rope_scaling` as a dict ({} for plain RoPE)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.rope_scaling or ()}

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_hf(cls, hf: dict[str, Any], *, source: str = "config.json", **overrides) -> ModelConfig:
        """Builds a config from a parsed HF `config.json` (transformers 4 or 5 layout)."""
        model_type = hf.get("model_type")
        if model_type not in FAMILY_DEFAULTS:
            raise UnsupportedModelError(
                f"{source}: model_type {model_type!r} is not supported; "
                f"nsa_jax implements {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        act = hf.get("hidden_act", "silu")
        if act != "silu":
            raise UnsupportedModelError(f"{source}: hidden_act {act!r} is not supported (only 'silu')")
        if hf.get("use_sliding_window"):
            raise UnsupportedModelError(f"{source}: use_sliding_window=true is not supported")
        # transformers 5 nests rope settings under `rope_parameters`; older files keep them at the top level.
        rope = dict(hf.get("rope_parameters") or {})
        rope_theta = rope.pop("rope_theta", hf.get("rope_theta", 10000.0))
        if not rope and hf.get("rope_scaling"):
            rope = dict(hf["rope_scaling"])
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type not in ("default", "llama3", "linear"):
            raise UnsupportedModelError(f"{source}: rope type {rope_type!r} is not supported")
        rope_scaling = None if rope_type == "default" else {**rope, "rope_type": rope_type}
        heads = hf["num_attention_heads"]
        fields = dict(  # noqa: C408  keyword form mirrors the dataclass fields
            model_type=model_type,
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            intermediate_size=hf["intermediate_size"],
            num_hidden_layers=hf["num_hidden_layers"],
            num_attention_heads=heads,
            num_key_value_heads=hf.get("num_key_value_heads") or heads,
            head_dim=hf.get("head_dim") or hf["hidden_size"] // heads,
            rope_theta=float(rope_theta),
            rope_scaling=rope_scaling,
            rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
            tie_word_embeddings=hf.get("tie_word_embeddings", model_type != "llama"),
            attention_bias=hf.get("attention_bias", FAMILY_DEFAULTS[model_type]["attention_bias"]),
            mlp_bias=hf.get("mlp_bias", False),
            qk_norm=FAMILY_DEFAULTS[model_type]["qk_norm"],
            max_position_embeddings=hf.get("max_position_embeddings", 2048),
            bos_token_id=hf.get("bos_token_id"),
            eos_token_id=tuple(hf["eos_token_id"])
            if isinstance(hf.get("eos_token_id"), list)
            else hf.get("eos_token_id"),
            pad_token_id=hf.get("pad_token_id"),
            initializer_range=hf.get("initializer_range", 0.02),
        )
        if model_type == "qwen2":  # Qwen2 always has q/k/v biases; its config.json has no flag for them.
            fields["attention_bias"] = True
        fields.update(overrides)
        return cls(**fields)

    def to_hf(self) -> dict[str, Any]:
        """The `config.json` dict transformers needs to rebuild this architecture."""
        rope_parameters = {"rope_type": "default", "rope_theta": self.rope_theta}
        rope_parameters.update(self.rope_scaling_dict)
        eos = list(self.eos_token_id) if isinstance(self.eos_token_id, tuple) else self.eos_token_id
        hf = {
            "architectures": [_ARCHITECTURES[self.model_type]],
            "model_type": self.model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
            "initializer_range": self.initializer_range,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": eos,
            "pad_token_id": self.pad_token_id,
            # Both layouts, so transformers 4 (rope_theta/rope_scaling) and 5 (rope_parameters) read it alike.
            "rope_theta": self.rope_theta,
            "rope_scaling": self.rope_scaling_dict or None,
            "rope_parameters": rope_parameters,
            "torch_dtype": jnp.dtype(self.param_dtype).name,  # "float32", "bfloat16", "float16"
        }
        if self.model_type == "llama":
            hf.update(attention_bias=self.attention_bias, mlp_bias=self.mlp_bias)
        return hf


def _frozen(mapping: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A dict of scalars and lists as a sorted tuple of pairs, lists as tuples (hashable, comparable)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in mapping.items()))


_ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}
