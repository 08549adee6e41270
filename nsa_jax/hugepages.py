"""Large host buffers on transparent huge pages, for XLA CPU's temporary memory.

XLA CPU allocates a program's temporary buffer with ``malloc`` at every execution. Above glibc's mmap threshold
(at most 32 MiB) that is a fresh ``mmap``: the kernel faults it in one 4 KiB page at a time and it is unmapped again
when the program ends. The miniature's RL update (32 x 8 rows, a 735 MB temporary buffer) took 181k page faults
per update, a quarter of its CPU time in the kernel. glibc's tunable ``glibc.malloc.hugetlb=1`` (glibc 2.35 and
later) makes ``malloc`` ask for transparent huge pages on its mmaps (``madvise``, which the common
``transparent_hugepage=madvise`` setting honours): 700 faults per update, and the update 1.2x faster on a 2-core
Xeon (``benchmarks/rl_update.py``). Decode, whose buffers are small, is unchanged.

glibc reads its tunables once, when the process starts, so an entry point re-executes itself with the tunable set
(``reexec``) before it imports anything heavy: ``python -m nsa_jax.main`` and ``benchmarks/rl_update.py`` do. A
script of your own can do the same, or be started with ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``.
``NSA_JAX_HUGEPAGES=0`` turns it off. Nothing changes where it cannot apply: not Linux, not glibc, glibc older than 2.35, transparent huge pages
off, or the tunable already chosen.
"""

from __future__ import annotations

import os
import platform
import sys

TUNABLE = "glibc.malloc.hugetlb"
OPT_OUT = "NSA_JAX_HUGEPAGES"
_THP = "/sys/kernel/mm/transparent_hugepage/enabled"


def applies(env: dict[str, str] | None = None) -> bool:
    """Whether re-executing with the tunable would change anything here (see the module docstring)."""
    env = os.environ if env is None else env
    if env.get(OPT_OUT, "1") == "0" or TUNABLE in env.get("GLIBC_TUNABLES", "") or sys.platform != "linux":
        return False
    lib, version = platform.libc_ver()
    if lib != "glibc" or tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) < (2, 35):
        return False
    try:
        with open(_THP) as f:
            return "[never]" not in f.read()
    except OSError:
        return False


def environment(env: dict[str, str]) -> dict[str, str]:
    """A copy of ``env`` with ``glibc.malloc.hugetlb=1`` added to ``GLIBC_TUNABLES`` (its other tunables kept)."""
    tunables = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]
    return {**env, "GLIBC_TUNABLES": ":".join([*tunables, f"{TUNABLE}=1"])}


def reexec() -> None:
    """Replaces this process by the same command line with the tunable set, where it applies; else returns.

    Call it first thing in an entry point: the process starts again from the top (same pid, arguments,
    interpreter options and open files), and the second time round it returns."""
    if applies():
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, sys.orig_argv, environment(dict(os.environ)))
