"""The thin trainer loop shared by every method: init or resume, step, log, checkpoint.

Everything method-specific comes in as a `loss_fn` (the maths) and a batch source (the data); this file only
orchestrates. Metrics of step `i` are read after step `i + 1` has been dispatched, so the host never waits on the
device between steps.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Protocol

import jax
import ml_collections
import numpy as np
from flax import nnx
from jax.sharding import Mesh
from tqdm import tqdm

from nsa_jax import parallel
from nsa_jax.train.checkpoint import Checkpointer
from nsa_jax.train.metrics import MetricsWriter
from nsa_jax.train.optim import learning_rate_schedule, make_optimizer
from nsa_jax.train.state import TrainState, init_state, split_model, state_shardings
from nsa_jax.train.step import LossFn, jit_train_step, make_train_step


class NonFiniteError(RuntimeError):
    """Training stopped: the loss or gradient was non-finite `nonfinite_max_in_a_row` steps in a row."""


class BatchSource(Protocol):
    def batch(self, position: int) -> dict[str, np.ndarray]: ...

    def state(self, position: int) -> dict[str, Any]: ...


def run_dir(config: ml_collections.ConfigDict, name: str) -> str:
    """`config.<name>.dir` when set, else `<workdir>/<name>`."""
    return config[name].dir or os.path.join(config.workdir, name)


def micro_batches(config: ml_collections.ConfigDict, mesh: Mesh | None = None) -> int:
    """How many micro-batches a global batch is split into (`micro_batch_size` 0 means no accumulation); with a
    mesh, also checks that each micro-batch splits evenly over the data-parallel devices."""
    mb = config.micro_batch_size or config.batch_size
    if config.batch_size % mb:
        raise ValueError(f"batch_size={config.batch_size} is not a multiple of micro_batch_size={mb}")
    shards = 1 if mesh is None else int(np.prod([mesh.shape[a] for a in parallel.BATCH_AXES if a in mesh.shape]))
    if mb % shards:
        raise ValueError(
            f"micro-batches of {mb} sequences do not split over the {shards} data-parallel devices "
            f"(mesh data x fsdp); make batch_size / micro_batch_size a multiple of {shards}"
        )
    return config.batch_size // mb


def device_batch(host: dict[str, np.ndarray], shardings: dict[str, jax.sharding.Sharding]) -> dict[str, jax.Array]:
    """Global arrays from the host batch: each process places only the shards its own devices hold."""
    return {
        k: jax.make_array_from_callback(v.shape, shardings[k], lambda index, v=v: v[index]) for k, v in host.items()
    }


def fit(
    config: ml_collections.ConfigDict,
    model: nnx.Module,
    loss_fn: LossFn,
    data: BatchSource,
    mesh: Mesh,
) -> TrainState:
    """Trains `model` for `config.max_steps` steps, resuming from the latest checkpoint in the run directory.

    Returns the final state (parameters as a pure dict; `policy.set_params(model, state.params)` puts them back).
    """
    tx = make_optimizer(config.optimizer, config.max_steps)
    graphdef, params = split_model(model)
    shardings = state_shardings(model, tx, mesh)
    example = data.batch(0)
    batch_shardings = {k: parallel.batch_sharding(mesh, v.ndim) for k, v in example.items()}
    step_fn = jit_train_step(
        make_train_step(
            graphdef,
            loss_fn,
            tx,
            micro_batches=micro_batches(config, mesh),
            schedule=learning_rate_schedule(config.optimizer, config.max_steps),
        ),
        shardings,
        batch_shardings,
    )
    new_state = functools.partial(init_state, tx=tx, seed=config.seed)
    checkpoints = Checkpointer(
        run_dir(config, "checkpoint"), every=config.checkpoint.every, keep=config.checkpoint.keep
    )
    latest = checkpoints.latest_step()
    if latest is None:
        state = jax.jit(new_state, out_shardings=shardings)(params)
    else:
        state, saved_data = checkpoints.restore(latest, shardings, jax.eval_shape(new_state, params))
        expected = data.state(latest)
        if saved_data != expected:
            raise ValueError(
                f"checkpoint {latest} in {run_dir(config, 'checkpoint')} was written for data {saved_data}, "
                f"but this run's data is {expected}; use a new workdir or restore the original data settings"
            )
    del params  # the state owns (and the first step donates) the parameters from here on

    writer = MetricsWriter(run_dir(config, "metrics"), tensorboard=config.metrics.tensorboard)
    start = int(state.step)
    bar = tqdm(total=config.max_steps, initial=start, desc=config.trainer, disable=not parallel.is_main_process())
    clock = {"time": time.perf_counter(), "tokens": 0}

    def report(step: int, metrics: dict[str, jax.Array]) -> None:
        values = {k: float(v) for k, v in jax.device_get(metrics).items()}
        now = time.perf_counter()
        values["tokens_per_s"] = clock["tokens"] / max(now - clock["time"], 1e-9)
        if step % config.log_every == 0 or step == config.max_steps:
            writer.write(step, values)
            clock.update(time=now, tokens=0)
        bar.set_postfix(_describe(values), refresh=False)
        bar.update(1)
        if values["nonfinite_in_a_row"] >= config.nonfinite_max_in_a_row:
            raise NonFiniteError(
                f"step {step}: loss or gradient non-finite {int(values['nonfinite_in_a_row'])} steps in a row "
                f"(nonfinite_max_in_a_row={config.nonfinite_max_in_a_row}); parameters are those of the last "
                f"finite step. Lower optimizer.learning_rate or check the data."
            )

    pending, saved = None, latest
    try:
        for step in range(start, config.max_steps):
            host = data.batch(step)
            state, metrics = step_fn(state, device_batch(host, batch_shardings))
            clock["tokens"] += int(host["attention_mask"].sum()) if "attention_mask" in host else 0
            if pending is not None:
                report(*pending)
            pending = (step + 1, metrics)
            if checkpoints.save(step + 1, state, data.state(step + 1)):
                saved = step + 1
        if pending is not None:
            report(*pending)
        if saved != config.max_steps:
            checkpoints.save(config.max_steps, state, data.state(config.max_steps), force=True)
    finally:
        checkpoints.close()
        writer.close()
        bar.close()
    return state


def _describe(values: dict[str, float]) -> dict[str, str]:
    """What the progress bar shows: loss, reward when the trainer reports one, tokens/s."""
    shown = {"loss": f"{values['loss']:.4f}"}
    if "reward" in values:
        shown["reward"] = f"{values['reward']:.3f}"
    shown["tok/s"] = f"{values['tokens_per_s']:.0f}"
    return shown
