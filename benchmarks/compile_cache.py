"""Wall time of a run of the main job with and without the persistent compilation cache (`nsa_jax/compile_cache.py`),
each in a fresh process, in the same run: without the cache (the peer), with an empty cache (the first run, which
writes every program), and with that cache filled (a second run, or a run resumed after a kill). Also prints the
seconds each spent in XLA compiles (programs loaded from the cache are not compiled), and checks that the three reports
are byte-identical.

`--job test` (default) is the main job at test size (`tests/test_main_job.py`'s `shrunk` config: every stage of
`configs/demo.py` with a few rollouts and steps each, a one-layer start); `--job demo` is the README's first command,
`python -m nsa_jax.main --config=configs/demo.py` (about 7 minutes on 2 cores without the cache).

    python benchmarks/compile_cache.py [--job test|demo] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The child: the shrunk main job with the command line's host set-up (cpu_devices.configure before JAX starts,
# compile_cache.configure once it has), reporting its wall time and compile seconds as JSON on its last line.
_TEST_JOB = """
import importlib, json, sys, time
sys.path.insert(0, {repo!r})
from nsa_jax import cpu_devices
cpu_devices.configure()
import jax
from jax import monitoring
compile_s = [0.0]
def listen(event, duration, **kw):
    if event == "/jax/core/compile/backend_compile_duration":
        compile_s[0] += duration
monitoring.register_event_duration_secs_listener(listen)
from nsa_jax import compile_cache, train
from tests.rl.rl_helpers import one_layer_start
from tests.test_main_job import shrunk
start = time.perf_counter()
compile_cache.configure()
config = shrunk(importlib.import_module("configs.demo").get_config(), one_layer_start({root!r} + "/m"), {root!r})
train.get_trainer(config.trainer)(config)
print(json.dumps({{"wall": time.perf_counter() - start, "compile": compile_s[0]}}))
"""


def run_job(job: str, workdir: Path, cache: str) -> tuple[float, float | None, bytes]:
    """One run in a fresh process with NSA_JAX_COMPILE_CACHE=cache: (wall seconds, compile seconds or None, report)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
    env["NSA_JAX_COMPILE_CACHE"] = cache
    if job == "test":
        code = _TEST_JOB.format(repo=str(REPO), root=str(workdir))
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
        )
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        wall, compile_s = figures["wall"], figures["compile"]
    else:
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "nsa_jax.main", "--config=configs/demo.py", f"--config.workdir={workdir}"]
        subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, check=True)
        wall, compile_s = time.perf_counter() - start, None
    return wall, compile_s, (workdir / "quick" / "report.md").read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--job", choices=("test", "demo"), default="test")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}; job: {args.job}")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            cache = f"{tmp}/cache{r}"
            runs = {}
            for name, choice in (("no cache", "0"), ("empty cache", cache), ("filled cache", cache)):
                runs[name] = run_job(args.job, Path(tmp) / f"{r}-{name.replace(' ', '-')}", choice)
                wall, compile_s, _ = runs[name]
                extra = "" if compile_s is None else f", of which {compile_s:.1f} s in XLA compiles"
                print(f"round {r}: {name:12s} {wall:7.1f} s{extra}")
            reports = {report for _, _, report in runs.values()}
            peer = runs["no cache"][0]
            print(
                f"round {r}: no cache / filled cache {peer / runs['filled cache'][0]:.2f}x, "
                f"no cache / empty cache {peer / runs['empty cache'][0]:.2f}x; "
                f"reports byte-identical: {len(reports) == 1}"
            )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
