"""Load and save Hugging Face checkpoint directories (config.json + safetensors) without torch.

Loading validates everything it can from the safetensors headers (names, shapes, dtypes) before reading a byte of
weights, so a bad checkpoint fails fast with a message naming the file and tensor. The model is built abstractly
(`nnx.eval_shape`), so a large model is never randomly initialised just to be overwritten, and with `shardings`
each parameter goes straight into its sharding: each device receives only its own slice.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import safetensors
import safetensors.numpy
from flax import nnx

from nsa_jax.models.config import ModelConfig
from nsa_jax.models.hf_params import param_table, to_hf_tensors
from nsa_jax.models.transformer import Transformer

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
# Files a tokenizer (and its generation defaults) may consist of; `save_pretrained` carries over those present.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
)
# safetensors dtype names nsa_jax can load (floating point weights only).
_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16}
_SAVE_DTYPES = {np.dtype(v): k for k, v in _DTYPES.items()}
# Buffers that some checkpoints store but that are recomputed from the config.
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)

# Where each parameter goes: see `from_pretrained`.
Shardings = (
    Callable[[tuple, nnx.Variable], jax.sharding.Sharding | None] | Mapping[tuple, jax.sharding.Sharding] | nnx.State
)


class CheckpointError(ValueError):
    """A checkpoint directory is missing, malformed, or does not match the architecture its config describes."""


# ------------------------------------------------------------------------------------------------------- reading
def read_json(path: Path) -> dict[str, Any]:
    """Parses a JSON object file, turning absence and syntax errors into a CheckpointError naming the file."""
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def load_config(path: str | os.PathLike, **overrides) -> ModelConfig:
    """The ModelConfig of a checkpoint directory (raises UnsupportedModelError for other architectures).

    The end-of-turn ids of `generation_config.json` (Qwen2.5-Instruct's `<|im_end|>`, Llama 3 Instruct's
    `<|eot_id|>`), when the directory has one, become `stop_token_ids`: generation stops there too.
    """
    file = checkpoint_dir(path) / CONFIG_FILE
    hf = read_json(file)
    generation = checkpoint_dir(path) / "generation_config.json"
    if generation.is_file() and "stop_token_ids" not in overrides:
        eos = read_json(generation).get("eos_token_id")
        ids = [eos] if isinstance(eos, int) else eos or []
        if not all(isinstance(i, int) for i in ids):
            raise CheckpointError(f"{generation}: eos_token_id must be an int or a list of ints, got {eos!r}")
        overrides["stop_token_ids"] = tuple(ids)
    try:
        return ModelConfig.from_hf(hf, source=str(file), **overrides)
    except KeyError as e:
        raise CheckpointError(f"{file}: required key {e.args[0]!r} is missing") from e


def checkpoint_dir(path: str | os.PathLike) -> Path:
    """`path` as a Path, or a CheckpointError when it is not a directory."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: checkpoint directory not found")
    return path


def _header(file: Path) -> tuple[dict[str, Any], int]:
    """The tensor entries of a safetensors file and the byte offset where their data starts."""
    try:
        with open(file, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > os.path.getsize(file) - 8:
                raise ValueError(f"header length {size} exceeds the file size")
            header = json.loads(f.read(size))
    except (OSError, ValueError, struct.error) as e:
        raise CheckpointError(f"{file}: not a readable safetensors file ({e})") from e
    header.pop("__metadata__", None)
    return header, 8 + size


def tensor_index(path: Path) -> dict[str, tuple[Path, str, tuple[int, ...]]]:
    """Every tensor of a checkpoint directory: name -> (file, safetensors dtype, shape), from headers only."""
    index_file, single = path / INDEX_FILE, path / WEIGHTS_FILE
    if index_file.is_file():
        weight_map = read_json(index_file).get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{index_file}: no 'weight_map' object")
        files = sorted(set(weight_map.values()))
    elif single.is_file():
        weight_map, files = None, [WEIGHTS_FILE]
    else:
        raise CheckpointError(f"{path}: no weights found (neither {WEIGHTS_FILE} nor {INDEX_FILE})")
    out = {}
    for name in files:
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{file}: weights file listed in {INDEX_FILE} not found")
        header, _ = _header(file)
        for tensor, entry in header.items():
            out[tensor] = (file, entry["dtype"], tuple(entry["shape"]))
    for tensor, name in (weight_map or {}).items():
        if tensor not in out or out[tensor][0].name != name:
            raise CheckpointError(f"{path / name}: tensor {tensor} listed in {INDEX_FILE} is not in this file")
    return out


def read_tensor(file: Path, name: str) -> np.ndarray:
    """One tensor as numpy, through safetensors; bfloat16 is read from the raw bytes where that cannot."""
    try:
        with safetensors.safe_open(file, framework="numpy") as f:
            return f.get_tensor(name)
    except (TypeError, ValueError, safetensors.SafetensorError):
        # Older safetensors cannot return bfloat16 as numpy; its bytes are plain little-endian bf16.
        return read_raw_tensor(file, name)


def read_raw_tensor(file: Path, name: str) -> np.ndarray:
    """One tensor decoded directly from the file bytes with the header's offsets (memory-mapped, then copied)."""
    header, start = _header(file)
    entry = header[name]
    begin, end = entry["data_offsets"]
    raw = np.memmap(file, dtype=np.uint8, mode="r", offset=start + begin, shape=(end - begin,))
    return np.array(raw.view(_DTYPES[entry["dtype"]]).reshape(entry["shape"]))


# ------------------------------------------------------------------------------------------------------- loading
def _check_tensors(
    path: Path, cfg: ModelConfig, abstract: Transformer, found: dict, extra: Collection[str] = ()
) -> None:
    """Raises CheckpointError for missing, unexpected, mis-shaped or non-float tensors, before any data is read;
    the names in `extra` may be present and are left to the caller."""
    table = param_table(cfg)
    expected = {}
    for p, var in nnx.to_flat_state(nnx.state(abstract, nnx.Param)):
        conv = table[tuple(p)]
        expected[conv.hf_name] = jax.eval_shape(lambda x, c=conv: c.to_hf(x), var.get_value()).shape
    ignored = {n for n in found if n.endswith(_IGNORED_SUFFIXES)} | set(extra)
    if cfg.tie_word_embeddings:  # tied checkpoints may or may not repeat the embedding as lm_head
        ignored.add("lm_head.weight")
    missing = sorted(set(expected) - set(found))
    if missing:
        raise CheckpointError(f"{path}: {len(missing)} missing tensor(s): {', '.join(missing[:5])}")
    unexpected = sorted(set(found) - set(expected) - ignored)
    if unexpected:
        where = found[unexpected[0]][0]
        raise CheckpointError(f"{where}: {len(unexpected)} unexpected tensor(s): {', '.join(unexpected[:5])}")
    for name, shape in expected.items():
        file, dtype, got = found[name]
        if got != tuple(shape):
            raise CheckpointError(f"{file}: tensor {name} has shape {got}, but config.json implies {tuple(shape)}")
        if dtype not in _DTYPES:
            raise CheckpointError(f"{file}: tensor {name} has dtype {dtype}; supported: {', '.join(_DTYPES)}")


def _sharding_lookup(shardings: Shardings | None) -> Callable[[tuple, nnx.Variable], jax.sharding.Sharding | None]:
    """One (path, abstract param) -> Sharding | None function for every accepted form of `shardings`."""
    if shardings is None:
        return lambda path, var: None
    if isinstance(shardings, nnx.State):  # e.g. the model's parameter state mapped to Shardings
        shardings = {tuple(p): s for p, s in nnx.to_flat_state(shardings)}
    if isinstance(shardings, Mapping):
        return lambda path, var: shardings.get(path)
    return shardings


def from_pretrained(
    path: str | os.PathLike,
    *,
    dtype: Any = jnp.float32,
    param_dtype: Any = None,
    shardings: Shardings | None = None,
    lm_head: bool = True,
    extra_tensors: Collection[str] = (),
) -> Transformer:
    """Loads a local HF checkpoint directory (Llama 3 / Qwen2 / Qwen3) into an nsa_jax Transformer.

    dtype: compute dtype; param_dtype: storage dtype of the weights (default: dtype). shardings: None (default
    device), a dict {param path: Sharding}, an nnx.State of Shardings shaped like the model's parameters, or a
    callable (param path, abstract nnx.Param with its `axes` metadata) -> Sharding or None. A sharded parameter
    is assembled with `jax.make_array_from_callback`, so each device only receives its slice; the host holds one
    converted tensor at a time (memory-mapped reads, no torch).

    lm_head=False builds the backbone alone (a scalar-head model's, `models.heads`): no output projection, and an
    untied `lm_head.weight` in the checkpoint is ignored. `extra_tensors`: names the checkpoint may also hold (a
    head's `score.weight`), read by the caller.
    """
    path = checkpoint_dir(path)
    param_dtype = param_dtype or dtype
    cfg = load_config(path, dtype=dtype, param_dtype=param_dtype)
    if not lm_head:
        cfg = cfg.replace(tie_word_embeddings=True)  # tied: the only output projection is the (kept) embedding
    found = tensor_index(path)
    abstract = nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))
    _check_tensors(path, cfg, abstract, found, extra_tensors)
    table, sharding_for = param_table(cfg), _sharding_lookup(shardings)
    for p, var in nnx.to_flat_state(nnx.state(abstract, nnx.Param)):
        p = tuple(p)
        conv = table[p]
        hf_tensor = read_tensor(found[conv.hf_name][0], conv.hf_name)
        host = np.asarray(conv.from_hf(hf_tensor)).astype(param_dtype, copy=False)
        sharding = sharding_for(p, var)
        if sharding is None:
            value = jnp.asarray(host)
        else:
            value = jax.make_array_from_callback(host.shape, sharding, lambda index, h=host: h[index])
        var.set_value(value)
    return abstract


# -------------------------------------------------------------------------------------------------------- saving
def save_pretrained(
    model: Transformer,
    out_dir: str | os.PathLike,
    *,
    tokenizer_from: str | os.PathLike | None = None,
    dtype: Any = None,
    metadata: Mapping[str, str] | None = None,
    hf_config: Mapping[str, Any] | None = None,
    extra_tensors: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Writes `model` as an HF checkpoint directory that `transformers.AutoModelForCausalLM` loads unchanged.

    config.json comes from `ModelConfig.to_hf`, weights go to one `model.safetensors` (metadata format=pt, which
    transformers requires, plus `metadata`) in the parameter dtype or `dtype`; tokenizer files (and
    generation_config.json) are copied from `tokenizer_from`. `hf_config` replaces config.json's keys and
    `extra_tensors` adds named tensors (a scalar head's architecture and `score.weight`, `models.heads`).
    Everything is written to a temporary sibling directory first and renamed into place, so an interrupted save
    never leaves a half-written checkpoint at `out_dir`. Returns out_dir.
    """
    out_dir = Path(out_dir)
    cfg = model.config if dtype is None else model.config.replace(param_dtype=dtype)
    tensors = {**to_hf_tensors(model), **(extra_tensors or {})}
    if dtype is not None:
        tensors = {k: v.astype(dtype) for k, v in tensors.items()}
    for name, value in tensors.items():
        if value.dtype not in _SAVE_DTYPES:
            raise CheckpointError(f"tensor {name}: dtype {value.dtype} cannot be saved; use float32/16 or bfloat16")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        hf = {**cfg.to_hf(), **(hf_config or {})}
        (tmp / CONFIG_FILE).write_text(json.dumps(hf, indent=2) + "\n", encoding="utf-8")
        safetensors.numpy.save_file(tensors, tmp / WEIGHTS_FILE, metadata={"format": "pt", **(metadata or {})})
        if tokenizer_from is not None:
            src = checkpoint_dir(tokenizer_from)
            for name in TOKENIZER_FILES:
                if (src / name).is_file():
                    shutil.copyfile(src / name, tmp / name)
        _replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _replace_dir(new: Path, target: Path) -> None:
    """Moves directory `new` to `target`, replacing what is there (the old one is removed only after the move)."""
    if not target.exists():
        os.replace(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, old / "previous")
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)
