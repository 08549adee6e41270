"""One XLA CPU device per core, for runs of the command line on CPU.

XLA CPU runs a program's operations one after another and spreads an operation over the cores only when it is
large. A decode step of a small model at batch 64-256 (matmuls of [256, 128] x [128, 384], attention of one new
token per row) then runs almost wholly on one core: on a 2-core Xeon its threads were busy 9.6 ms per 7.9 ms step.
With the host platform split into one device per core (XLA's `--xla_force_host_platform_device_count`), the
trainers' mesh (`parallel.make_mesh()`: every device on the data-parallel "fsdp" axis) splits the batch over the
devices and every core runs its rows of each operation at the same time. On that Xeon (`benchmarks/sampling.py`,
two runs): decode 1.49-1.56x faster at batch 64 and 1.83-1.87x at batch 256, but 0.87-0.89x at batch 16, where a
step was too short to split while the devices met at every step (since each decodes in a loop of its own, 1.34-1.40x
there on a 2-core AMD EPYC); the RL update, whose operations already use both cores, about the same (1.00x best,
0.97x median of 11 alternating rounds in one process, one-device mesh against the two-device one); the main job
(`configs/demo.py`) 6.9 -> 5.9 minutes.

XLA reads the flag when JAX starts its CPU backend, so `configure()` runs before anything asks for a device:
`python -m nsa_jax.main` and the benchmarks call it first. The count is the largest power of two not above the
cores this process may use, and at most `MAX_AUTO` (8): batch sizes that are powers of two split evenly, the
configs' smallest train batches (16 rows) keep two rows per device, and the miniature's rollouts (256 rows) 32. It
was measured on 2 cores only. Nothing changes where XLA_FLAGS already choose a count or on one core.
`NSA_JAX_CPU_DEVICES=N` asks for N devices instead (a train batch that does not split over them is refused with a
message naming the device count), and 0 or 1 turns this off. On a GPU or TPU host the flag only splits the CPU
platform, which JAX then does not use.
"""

from __future__ import annotations

import os

FLAG = "--xla_force_host_platform_device_count"
CHOICE = "NSA_JAX_CPU_DEVICES"
MAX_AUTO = 8


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def device_count(env: dict[str, str] | None = None, cores: int | None = None) -> int:
    """Host devices `configure` asks for: `NSA_JAX_CPU_DEVICES` when set, else the largest power of two not above
    `cores` (default: the usable cores) or `MAX_AUTO`; 1 means leave XLA's default (one device)."""
    env = os.environ if env is None else env
    chosen = env.get(CHOICE, "").strip()
    if chosen:
        if not chosen.isdigit():
            raise ValueError(f"{CHOICE}={chosen!r} is not a device count (a whole number; 0 or 1 turns it off)")
        return max(int(chosen), 1)
    cores = usable_cores() if cores is None else cores
    return min(1 << (max(cores, 1).bit_length() - 1), MAX_AUTO)


def environment(env: dict[str, str], cores: int | None = None) -> dict[str, str]:
    """A copy of `env` with the host device count added to XLA_FLAGS (its other flags kept); unchanged where
    XLA_FLAGS already hold a count or one device is asked for."""
    flags = env.get("XLA_FLAGS", "")
    count = device_count(env, cores)
    if FLAG in flags or count == 1:
        return dict(env)
    return {**env, "XLA_FLAGS": f"{flags} {FLAG}={count}".strip()}


def configure() -> None:
    """Sets XLA_FLAGS in this process's environment (see the module docstring). Call it before JAX's first use of
    a device; afterwards it changes nothing."""
    os.environ.update(environment(dict(os.environ)))
