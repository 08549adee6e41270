"""A small pool of worker processes that runs untrusted-input jobs under hard deadlines.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot kill one hung task, and a crashed worker breaks the
whole executor. Here every worker is a process with its own pipe; the caller sends one job at a time to each idle
worker and waits on the pipes with a timeout. A job that passes its per-item deadline, or is still running when the
per-batch deadline ends, has its worker killed (SIGKILL) and replaced by a fresh one that starts in the background;
a worker that dies mid-job is counted as a crash. The caller is never blocked much past the batch deadline.

Workers run in a temporary working directory (removed on close) with an address-space limit, ignore SIGINT (Ctrl-C belongs to
the trainer), and are started with the ``forkserver`` method (never ``fork``: the parent may hold JAX threads), with
the given modules preloaded in the fork server so a replacement worker is ready in milliseconds. Workers never run
the caller's ``__main__``: multiprocessing would re-run the caller's script in every worker (so an unguarded script
calls the verifier from inside its own workers, and a script read from stdin cannot be re-run at all), but the
worker needs nothing from it, so the pool starts its processes with the main module hidden.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

log = logging.getLogger(__name__)

OK, ERROR, TIMEOUT, CRASH = "ok", "error", "timeout", "crash"
_READY = "ready"


@dataclass
class PoolStats:
    """Counters since the pool was made (a timeout or crash is also a restart)."""

    ok: int = 0
    errors: int = 0
    timeouts: int = 0
    crashes: int = 0
    restarts: int = 0


@dataclass
class _Worker:
    process: Any
    conn: Connection
    ready: bool = False
    job: int | None = None  # index of the item it is running
    started: float = 0.0


@dataclass
class _Batch:
    results: list[tuple[str, Any]]
    pending: deque = field(default_factory=deque)


@contextlib.contextmanager
def _main_module_hidden():
    """While a worker (or the fork server) starts, ``__main__`` is an empty module: multiprocessing then sends the
    child no main script to re-import, as for an interactive session. Nothing the worker runs lives in ``__main__``
    (its target and jobs are named by module), so scripts, stdin, notebooks and pytest all get the same workers."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _worker_main(conn: Connection, workdir: str, preload: Sequence[str], memory_limit: int | None) -> None:
    """Worker loop: receive pickled ``(fn, args)``, send back ``(status, value)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if memory_limit:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    os.chdir(workdir)
    for module in preload:
        __import__(module)
    conn.send(_READY)
    while True:
        try:
            payload = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            fn, args = pickle.loads(payload)
            if isinstance(fn, str):
                module, _, name = fn.partition(":")
                fn = getattr(importlib.import_module(module), name)
            reply: tuple[str, Any] = (OK, fn(*args))
        except BaseException as e:  # noqa: BLE001 - any failure of untrusted work is a result, not a crash
            reply = (ERROR, f"{type(e).__name__}: {str(e)[:200]}")
        try:
            conn.send(reply)
        except Exception as e:  # noqa: BLE001 - an unpicklable result is an error too
            conn.send((ERROR, f"unsendable result: {type(e).__name__}"))


class WorkerPool:
    """``n_workers`` processes running top-level picklable functions with per-item and per-batch deadlines.

    Each worker imports ``preload`` before it takes work, so import time never counts against an item's deadline.
    ``server_preload`` also imports them in the process-wide fork server (only if it is not running yet), making
    replacement workers instant; only one pool should ask for it.
    """

    def __init__(
        self,
        n_workers: int = 2,
        *,
        preload: Sequence[str] = (),
        memory_limit: int | None = 2 << 30,
        start_method: str = "forkserver",
        server_preload: bool = False,
    ):
        if n_workers < 1:
            raise ValueError(f"n_workers must be >= 1, got {n_workers}")
        self.n_workers = n_workers
        self.preload = tuple(preload)
        self.memory_limit = memory_limit
        self._ctx = mp.get_context(start_method)
        if start_method == "forkserver" and server_preload:
            self._ctx.set_forkserver_preload(list(self.preload))
        self._workdir = tempfile.mkdtemp(prefix="nsa_jax_verifier_")
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self.stats = PoolStats()
        self.closed = False

    def _start_worker(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_worker_main,
            args=(child, self._workdir, self.preload, self.memory_limit),
            daemon=True,
            name="nsa_jax-verifier",
        )
        with _main_module_hidden():
            process.start()
        child.close()
        return _Worker(process=process, conn=parent)

    def _replace(self, worker: _Worker) -> None:
        """Kill a worker (hung, dead or mid-job at the deadline) and start a fresh one in its place."""
        worker.process.kill()
        worker.process.join(timeout=1.0)
        worker.conn.close()
        self._workers[self._workers.index(worker)] = self._start_worker()
        self.stats.restarts += 1

    def warm_up(self) -> None:
        """Start the workers now (they import ``preload`` in the background) instead of on the first call."""
        if self.closed:
            raise RuntimeError("the worker pool is closed")
        while len(self._workers) < self.n_workers:
            self._workers.append(self._start_worker())

    def map(
        self,
        fn: Callable[..., Any] | str,
        args: Sequence[tuple],
        *,
        item_deadline_s: float,
        deadline_s: float,
    ) -> list[tuple[str, Any]]:
        """Run ``fn(*a)`` for each ``a`` in ``args`` (``fn`` a picklable function or ``"module:name"``, imported only
        in the workers); returns ``(status, value)`` per item, status one of
        ``ok``/``error``/``timeout``/``crash``. Items not finished when ``deadline_s`` ends are timeouts."""
        with self._lock:
            self.warm_up()
            end = time.monotonic() + deadline_s
            batch = _Batch(results=[(TIMEOUT, None)] * len(args), pending=deque(range(len(args))))
            payloads = [pickle.dumps((fn, a)) for a in args]
            while batch.pending or any(w.job is not None for w in self._workers):
                now = time.monotonic()
                if now >= end:
                    break
                self._dispatch(batch, payloads, now)
                busy = [w.started + item_deadline_s for w in self._workers if w.job is not None]
                timeout = max(0.0, min([end, *busy]) - now)
                for conn in wait([w.conn for w in self._workers], timeout=timeout):
                    self._receive(next(w for w in self._workers if w.conn is conn), batch)
                self._expire(batch, time.monotonic(), item_deadline_s)
            for worker in [w for w in self._workers if w.job is not None]:
                self.stats.timeouts += 1
                self._replace(worker)
            self.stats.timeouts += len(batch.pending)
            return batch.results

    def _dispatch(self, batch: _Batch, payloads: list[bytes], now: float) -> None:
        for worker in self._workers:
            if worker.ready and worker.job is None and batch.pending:
                worker.job, worker.started = batch.pending.popleft(), now
                try:
                    worker.conn.send_bytes(payloads[worker.job])
                except OSError:  # died while idle: its EOF is picked up by _receive
                    pass

    def _receive(self, worker: _Worker, batch: _Batch) -> None:
        try:
            msg = worker.conn.recv()
        except (EOFError, OSError):
            if worker.job is not None:
                batch.results[worker.job] = (CRASH, None)
                self.stats.crashes += 1
            else:
                log.warning("verifier worker %s died while idle; replacing it", worker.process.pid)
            self._replace(worker)
            return
        if msg == _READY:
            worker.ready = True
            return
        if worker.job is not None:
            batch.results[worker.job] = msg
            if msg[0] == OK:
                self.stats.ok += 1
            else:
                self.stats.errors += 1
            worker.job = None

    def _expire(self, batch: _Batch, now: float, item_deadline_s: float) -> None:
        for worker in list(self._workers):
            if worker.job is not None and now - worker.started >= item_deadline_s:
                batch.results[worker.job] = (TIMEOUT, None)
                self.stats.timeouts += 1
                self._replace(worker)

    def close(self) -> None:
        """Stop every worker (ask nicely, then kill): registered atexit by the verifier."""
        with self._lock:
            self.closed = True
            for worker in self._workers:
                try:
                    worker.conn.close()
                except OSError:
                    pass
            for worker in self._workers:
                worker.process.join(timeout=0.5)
                if worker.process.is_alive():
                    worker.process.kill()
                    worker.process.join(timeout=1.0)
            self._workers = []
            shutil.rmtree(self._workdir, ignore_errors=True)
