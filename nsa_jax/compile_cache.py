"""Compiled programs kept on disk between runs of the command line (JAX's persistent compilation cache).

At the sizes the configs start with, a run spends most of its time compiling: the main job at test size
(`tests/test_main_job.py`'s shrunk `configs/demo.py`) spent 95.1 s of its 121.9 s in XLA compiles on a 2-core AMD
EPYC. With the cache a second run, or a run resumed after a kill, loads the programs instead: the same job 26.6 s,
the demo 442.8 -> 400.7 s, with the same reports byte for byte (the executables are XLA's own, serialised;
`benchmarks/compile_cache.py`). `python -m nsa_jax.main` calls `configure()` once JAX's backend is up and before
anything compiles.

Where: `NSA_JAX_COMPILE_CACHE` names a folder (or a URL JAX's cache takes, such as `gs://...` on a TPU pod, where
every host should share one); unset, `$XDG_CACHE_HOME/nsa_jax/xla` (`~/.cache/nsa_jax/xla`); `0` turns the cache
off. The entries go in a subfolder per kind of machine (`machine_tag`): JAX's cache key names the platform ("cpu")
and jaxlib's version but not the host's instruction set, and a program compiled on a host with AVX-512 may not run
on one without it, as happens where a home folder is shared by different machines. A `JAX_COMPILATION_CACHE_DIR`
of the user's own is taken as it is.

What: every program, however short its compile (JAX's default keeps only those of a second or more, which leaves out
most of a small model's; `JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS` in the environment wins). The folder is not
bounded (JAX's default); `JAX_COMPILATION_CACHE_MAX_SIZE=<bytes>` bounds it, the least recently used entries going
first, at the price of JAX reading every entry's access time at each write. Only the first process of a
`jax.distributed` run writes entries (JAX's rule): the hosts of a pod gain from a folder they share. An entry that
cannot be read (one cut short by a killed run, or read while another process writes it) is reported by JAX's warning and
compiled again; a folder that cannot be made (a read-only home) costs one such warning, and the run goes on uncached.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

CHOICE = "NSA_JAX_COMPILE_CACHE"


def root(env: dict[str, str] | None = None) -> str | None:
    """The cache's folder before the machine's subfolder, or None when `NSA_JAX_COMPILE_CACHE=0` turns it off."""
    env = os.environ if env is None else env
    chosen = env.get(CHOICE, "").strip()
    if chosen == "0":
        return None
    if chosen:
        return chosen
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "nsa_jax" / "xla")


def cpu_signature(cpuinfo: str | None = None) -> str:
    """The host CPU's model and instruction-set flags as one string (Linux: from /proc/cpuinfo's first processor;
    elsewhere the platform's processor and machine names)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    fields = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block is enough: every core of a host has the same flags
            continue
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    parts = [fields.get("model name", ""), " ".join(sorted(fields.get("flags", "").split()))]
    if not any(parts):
        parts = [platform.processor(), platform.machine()]
    return "\n".join(parts)


def machine_tag(platform_name: str, device_kind: str, cpuinfo: str | None = None) -> str:
    """The cache's subfolder for this kind of machine: the platform, the device kind and, on CPU, a hash of the
    host CPU's model and flags (`cpu_signature`), e.g. `cpu-1f0c9e2a7b3d` or `gpu-NVIDIA_H100_80GB_HBM3`."""
    kind = hashlib.sha256(cpu_signature(cpuinfo).encode()).hexdigest()[:12] if platform_name == "cpu" else device_kind
    tag = f"{platform_name}-{kind}"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in tag)


def configure() -> str | None:
    """Turns JAX's persistent compilation cache on for this process (see the module docstring) and returns its
    folder, or None where it stays off. Call it after JAX's backend has started (it reads the first device) and
    before the first compile: JAX decides once, at its first compile, whether a cache is in use."""
    import jax

    folder = jax.config.jax_compilation_cache_dir  # the user's own JAX_COMPILATION_CACHE_DIR, kept as it is
    if not folder:
        base = root()
        if base is None:
            return None
        device = jax.devices()[0]
        folder = f"{base.rstrip('/')}/{machine_tag(device.platform, device.device_kind)}"
        jax.config.update("jax_compilation_cache_dir", folder)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # the user's own choice stays
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return folder
