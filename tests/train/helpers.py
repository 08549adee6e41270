"""Small shared pieces of the train tests: a tiny model config, a random SFT batch, a jitted step on a mesh."""

import functools
import os

import jax
import ml_collections
import numpy as np

from nsa_jax import models, parallel
from nsa_jax.train import init_state, jit_train_step, make_train_step, split_model, state_shardings
from nsa_jax.train.core import make_optimizer
from nsa_jax.train.sft import nll_loss


def xla_flags(devices: int | None) -> str:
    """XLA_FLAGS for a subprocess with `devices` fake CPU devices (None: XLA's one), keeping every other flag of
    this process's (an instruction-set cap such as --xla_cpu_max_isa=AVX2 must reach the runs it checks)."""
    flags = os.environ.get("XLA_FLAGS", "").split()
    kept = [f for f in flags if not f.startswith("--xla_force_host_platform_device_count")]
    return " ".join(kept + ([f"--xla_force_host_platform_device_count={devices}"] if devices else []))


# The shape of every test model: one layer, small enough that CPU compilation stays short.
SMALL_SHAPE = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
}
TINY = models.ModelConfig(vocab_size=64, **SMALL_SHAPE)


def optimizer_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        {
            "learning_rate": 1e-3,
            "warmup_steps": 0,
            "end_lr_factor": 0.1,
            "b1": 0.9,
            "b2": 0.95,
            "eps": 1e-8,
            "weight_decay": 0.01,
            "max_grad_norm": 1.0,
        }
    )


def random_batch(batch_size: int = 8, seq_len: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """Right-padded rows of random lengths with a prompt of 3 tokens and a response after it."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, TINY.vocab_size, (batch_size, seq_len)).astype(np.int32)
    lengths = rng.integers(5, seq_len + 1, batch_size)
    attention = (np.arange(seq_len)[None] < lengths[:, None]).astype(np.int32)
    loss_mask = (attention * (np.arange(seq_len)[None] >= 3)).astype(np.float32)
    return {"input_ids": ids * attention, "attention_mask": attention, "loss_mask": loss_mask}


@functools.cache
def _compiled_step(mesh, micro_batches, loss_fn, batch_ndims):
    """One jitted step per (mesh, micro-batching, loss, batch layout): tests share compilations (CPU XLA is slow)."""
    model = models.init_model(TINY, seed=0)
    tx = make_optimizer(optimizer_config(), total_steps=10)
    graphdef, _ = split_model(model)
    shardings = state_shardings(model, tx, mesh)
    batch_shardings = {k: parallel.batch_sharding(mesh, ndim) for k, ndim in batch_ndims}
    step = jit_train_step(
        make_train_step(graphdef, loss_fn, tx, micro_batches=micro_batches), shardings, batch_shardings
    )
    init = jax.jit(functools.partial(init_state, tx=tx, seed=0), out_shardings=shardings)
    return step, init, batch_shardings


def run_steps(mesh, batches, *, micro_batches=1, loss_fn=None):
    """Fresh tiny model (seed 0) on `mesh`, one jitted step per batch; returns (final state, list of metrics)."""
    loss_fn = loss_fn or DEFAULT_LOSS
    layout = tuple(sorted((k, v.ndim) for k, v in batches[0].items()))
    step, init, batch_shardings = _compiled_step(mesh, micro_batches, loss_fn, layout)
    state = init(split_model(parallel.shard_model(models.init_model(TINY, seed=0), mesh))[1])
    history = []
    for batch in batches:
        state, metrics = step(state, {k: jax.device_put(v, batch_shardings[k]) for k, v in batch.items()})
        history.append(jax.device_get(metrics))
    return state, history


DEFAULT_LOSS = functools.partial(nll_loss, chunk_size=16)


def single_device_mesh():
    return parallel.make_mesh(1, 1, 1, devices=jax.devices()[:1])
