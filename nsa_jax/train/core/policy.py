"""Loading the policy (from a local HF directory or the built-in tiny model) straight into its shardings, and
exporting the trained policy back to an HF directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import ml_collections
from absl import logging
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding

from nsa_jax import models, parallel
from nsa_jax.models.tiny import VARIANTS as TINY_VARIANTS
from nsa_jax.train.core.state import split_model

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def model_dir(config: ml_collections.ConfigDict) -> str:
    """The HF directory the policy loads from: `model.path`, or the built-in tiny model `model.builtin` ("tiny",
    "tiny-wide") written to `<workdir>/<builtin>_model`.

    Raises FileNotFoundError (before anything is written) when `model.path` does not hold a `config.json`.
    """
    cfg = config.model
    if cfg.path:
        if not os.path.isfile(os.path.join(cfg.path, "config.json")):
            raise FileNotFoundError(f"model.path={cfg.path!r} is not a Hugging Face model directory (no config.json)")
        return cfg.path
    if cfg.builtin not in TINY_VARIANTS:
        raise ValueError(
            f"model.builtin={cfg.builtin!r} is unknown; set model.path or use model.builtin in {list(TINY_VARIANTS)}"
        )
    # One directory per variant, so switching model.builtin in a workdir never reuses another variant's weights.
    dest = os.path.join(config.workdir, f"{cfg.builtin}_model")

    def write() -> None:
        if not os.path.isfile(os.path.join(dest, "config.json")):
            models.tiny_model_dir(dest, seed=cfg.seed, variant=cfg.builtin)

    # Process 0 writes it to shared storage once; every process waits for it, whether or not it saw it missing.
    parallel.main_process_first("tiny_model_dir", write)
    return dest


def load_policy(config: ml_collections.ConfigDict, mesh: Mesh, path: str) -> nnx.Module:
    """The model at `path` with each parameter placed directly in its sharding (logical axes -> mesh table), and
    `model.remat` as its activation rematerialisation and `model.attention` / `model.attention_chunk` as its
    attention."""

    dtype = dtype_of(config.model.dtype)
    model = models.from_pretrained(
        path, dtype=dtype, param_dtype=dtype_of(config.model.param_dtype), shardings=param_placement(mesh)
    )
    # Like the dtypes, remat and attention are compute choices that the checkpoint's config.json does not hold.
    m = config.model
    model.config = model.config.replace(remat=m.remat, attention=m.attention, attention_chunk=m.attention_chunk)
    replicated = parallel.replicated_against_rules(model, mesh)
    if replicated and parallel.is_main_process():
        logging.warning(
            "%d parameter dimensions do not divide their mesh axes and are replicated there instead:\n  %s",
            len(replicated),
            "\n  ".join(replicated),
        )
    return model


def param_placement(mesh: Mesh) -> Callable[[tuple, nnx.Variable], NamedSharding]:
    """Where each parameter of a loaded checkpoint goes: its logical axes through the mesh table."""

    def sharding(_, var: nnx.Variable) -> NamedSharding:
        axes = var.get_metadata().get("axes") or (None,) * len(var.shape)
        return NamedSharding(mesh, parallel.logical_to_spec(axes, var.shape, mesh))

    return sharding


def set_params(model: nnx.Module, params: dict) -> None:
    """Puts a pure dict of parameters (a TrainState's) back into the module, keeping their shardings."""
    state = nnx.state(model, nnx.Param)
    nnx.replace_by_pure_dict(state, params)
    nnx.update(model, state)


def export_policy(
    model: nnx.Module, out_dir: str, tokenizer_from: str, save: Callable[..., Any] = models.save_pretrained
) -> None:
    """Writes the model as an HF directory from process 0 (`save`: `models.save_pretrained`, or `models.save_head`
    for a scalar head); every process joins the gather of sharded weights."""
    graphdef, params = split_model(model)
    host = multihost_utils.process_allgather(params, tiled=True)
    if parallel.is_main_process():
        save(nnx.merge(graphdef, host), out_dir, tokenizer_from=tokenizer_from)


def dtype_of(name: str):
    """The dtype a config names (`model.dtype`, `model.param_dtype`): "float32" or "bfloat16"."""
    if name not in DTYPES:
        raise ValueError(f"dtype {name!r} is not one of {sorted(DTYPES)}")
    return DTYPES[name]
