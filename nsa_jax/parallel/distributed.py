"""Multi-host start-up: one JAX process per host (TPU pods) or per GPU/host (SLURM), or N local CPU processes.

`initialize(...)` is called once, before any other JAX call. With explicit arguments (or the NSA_JAX_COORDINATOR,
NSA_JAX_NUM_PROCESSES, NSA_JAX_PROCESS_ID environment variables that `launch/local_multiprocess.sh` and
`launch/slurm_gpu.sh` set) it connects to that coordinator; on a TPU pod slice, or under SLURM, JAX detects the
cluster itself; on a single machine it does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from nsa_jax.parallel.mesh import batch_sharding

_AUTO_ENV = ("TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS", "SLURM_JOB_ID")


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: list[int] | None = None,
) -> bool:
    """Starts jax.distributed when this run spans several processes; returns whether it did."""
    coordinator_address = coordinator_address or os.environ.get("NSA_JAX_COORDINATOR") or None
    if num_processes is None and os.environ.get("NSA_JAX_NUM_PROCESSES"):
        num_processes = int(os.environ["NSA_JAX_NUM_PROCESSES"])
    if process_id is None and os.environ.get("NSA_JAX_PROCESS_ID"):
        process_id = int(os.environ["NSA_JAX_PROCESS_ID"])
    if coordinator_address:
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
            local_device_ids=local_device_ids,
        )
        return True
    if any(os.environ.get(k) for k in _AUTO_ENV):
        jax.distributed.initialize()  # cluster auto-detection (TPU metadata, SLURM variables)
        return True
    return False


def is_main_process() -> bool:
    """Only process 0 writes metrics, checkpoints' extra files and exports."""
    return jax.process_index() == 0


def main_process_first(name: str, fn: Callable[[], Any]) -> None:
    """Runs `fn` on process 0 while every other process waits at the barrier `name`: for steps that write shared
    storage once (the built-in model's files, TFDS preparation). Every process must call it, whatever it sees on
    disk, so that all of them reach the barrier."""
    if is_main_process():
        fn()
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def to_host(tree: Any) -> Any:
    """Host numpy copies of the arrays in `tree`, whole on every process: under `jax.distributed` a batch-sharded
    global array is not readable by one host, so it is gathered; on one process this is `jax.device_get`."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def broadcast_from_main(tree: Any) -> Any:
    """Process 0's value of `tree` (numpy arrays) on every process: results computed once, such as rewards from a
    verifier with wall-clock deadlines, which could differ between processes."""
    if jax.process_count() == 1:
        return tree
    return jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(tree))


def global_array(host: np.ndarray, sharding: jax.sharding.Sharding) -> jax.Array:
    """A global array of `sharding` from a host array that every process holds in full: each process places only
    the shards its own devices hold (with one process, a plain device_put)."""
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


# Programs a host loop may have dispatched and not yet finished (`pace`). A loop that queued many multi-device
# programs with collectives deadlocked XLA's CPU client (jaxlib 0.10.2, 2026-12-06): one device's half of a program
# waited in an all-gather while another device's launch of it waited for an admission slot (`xla::Semaphore` in
# Execute; the client admits 32 computations a device by default), and XLA aborted the process at the collective
# timeout. Seen in the main job's DPO reference scoring (45 chunks on 2 devices, 3 of 8 stages); with the tiny
# model on 8 devices, 100 scoring chunks or 100 train steps dispatched ahead hung in 5 of 5 and 6 of 6 runs, and
# with at most 8, 16 or 24 of the steps unfinished in none of 9 runs each (nor 30 passes of the DPO scoring with at
# most 28 chunks unfinished). The child of `tests/parallel/test_in_flight.py` reproduces it without the pacing.
MAX_IN_FLIGHT = 8


def pace(outputs: Sequence[Any], limit: int = MAX_IN_FLIGHT) -> None:
    """Called after each dispatch of a host loop with the outputs so far: waits until `outputs[-limit - 1]` is
    ready, so that at most `limit` of the loop's programs are unfinished (see MAX_IN_FLIGHT for why)."""
    if len(outputs) > limit:
        jax.block_until_ready(outputs[-limit - 1])


def map_rows(fn: Any, model: Any, arrays: list[np.ndarray], *, rows: int, mesh: Any = None) -> np.ndarray:
    """`fn(model, *chunk)` (a jitted function of [rows, ...] arrays) over `rows`-row chunks of the host `arrays`,
    concatenated on the host: the last chunk is padded with zero rows so every call has one shape (their results are
    dropped), and with a mesh each chunk is split over its batch axes (and the results gathered from every process).
    At most `MAX_IN_FLIGHT` chunks are dispatched ahead (`pace`).
    """
    total, out = len(arrays[0]), []
    for start in range(0, total, rows):
        chunk = [x[start : start + rows] for x in arrays]
        short = rows - len(chunk[0])
        if short:
            chunk = [np.concatenate([x, np.zeros((short, *x.shape[1:]), x.dtype)]) for x in chunk]
        if mesh is not None:
            chunk = [global_array(x, batch_sharding(mesh, x.ndim)) for x in chunk]
        out.append(fn(model, *chunk))
        pace(out)
    if not out:
        raise ValueError("map_rows needs at least one row")
    return np.concatenate([np.asarray(x) for x in to_host(out)])[:total]
