"""The command line end to end, in subprocesses: bad input fails cleanly before writing; a second run loads every
program from the compilation cache and trains to the same parameters; a run killed with SIGKILL (and a save cut
short) resumes to bitwise the same parameters; two jax.distributed processes match one."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
import safetensors.numpy
from helpers import SMALL_SHAPE, xla_flags

from nsa_jax import compile_cache, models
from nsa_jax.models.tiny import TINY_DIR

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "sft_tiny.py")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> str:
    """A 1-layer model over the built-in character tokenizer (fast to compile and step)."""
    cfg = models.load_config(TINY_DIR).replace(**SMALL_SHAPE)
    return str(
        models.save_pretrained(
            models.init_model(cfg, seed=0), tmp_path_factory.mktemp("small"), tokenizer_from=TINY_DIR
        )
    )


def command(model: str, workdir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nsa_jax.main",
        f"--config={CONFIG}",
        f"--config.model.path={model}",
        f"--config.workdir={workdir}",
        "--config.batch_size=4",
        "--config.data.num_examples=64",
        "--config.data.seq_len=96",
        "--config.log_every=1",
        "--config.metrics.tensorboard=False",
        "--config.optimizer.warmup_steps=2",
        *extra,
    ]


def env(devices: int = 1) -> dict[str, str]:
    return {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": xla_flags(devices)}


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=REPO, env=kwargs.pop("env", env()), capture_output=True, text=True, timeout=600, check=False, **kwargs
    )


def exported(workdir: Path) -> dict[str, np.ndarray]:
    return safetensors.numpy.load_file(workdir / "export" / "model.safetensors")


@pytest.mark.parametrize(
    "override, message",
    [
        ("--config.modle.path=x", "modle"),
        ("--config.model.path=/nonexistent/model", "not a Hugging Face model directory"),
        ("--config.data.path={bad_data}", "data.jsonl:2"),
    ],
    ids=["unknown-key", "missing-model", "bad-data"],
)
def test_bad_input_fails_clearly_and_writes_nothing(small_model, tmp_path, override, message):
    bad_data = tmp_path / "data.jsonl"
    bad_data.write_text('{"prompt": "1+1", "response": "2"}\n{"prompt": "2+2"\n', encoding="utf-8")
    workdir = tmp_path / "run"
    result = run(command(small_model, workdir, override.format(bad_data=bad_data)))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]
    assert not workdir.exists()


def test_second_run_loads_every_program_from_the_compile_cache(small_model, tmp_path):
    # As a user's shell has it: no JAX cache settings of its own (a developer's may carry some), the cache chosen by
    # NSA_JAX_COMPILE_CACHE (the suite's conftest turns it off).
    plain = {k: v for k, v in env().items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
    cache_env = {**plain, compile_cache.CHOICE: str(tmp_path / "cache")}
    device = jax.devices()[0]
    folder = tmp_path / "cache" / compile_cache.machine_tag(device.platform, device.device_kind)
    extra = ("--config.max_steps=2",)
    assert run(command(small_model, tmp_path / "first", *extra), env=cache_env).returncode == 0
    entries = sorted(p.name for p in folder.glob("*-cache"))
    assert len(entries) >= 3  # at least the state's set-up, the train step and a cast, whatever else is added

    # JAX logs each program it loads from the cache, and each it looked for in vain.
    logged = {**cache_env, "JAX_LOG_COMPILES": "1", "JAX_EXPLAIN_CACHE_MISSES": "1"}
    second = run(command(small_model, tmp_path / "second", *extra), env=logged)
    assert second.returncode == 0, second.stderr[-3000:]
    assert sorted(p.name for p in folder.glob("*-cache")) == entries  # nothing compiled that was not there
    assert second.stderr.count("Persistent compilation cache hit") == len(entries)
    assert "PERSISTENT COMPILATION CACHE MISS" not in second.stderr
    ours, theirs = exported(tmp_path / "second"), exported(tmp_path / "first")
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


def _complete_steps(checkpoints: Path) -> list[int]:
    return sorted(int(p.name) for p in checkpoints.glob("*") if p.name.isdigit()) if checkpoints.exists() else []


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_to_bitwise_identical_params(small_model, tmp_path):
    extra = ("--config.max_steps=30", "--config.checkpoint.every=3", "--config.checkpoint.keep=3")
    # The runs share a compilation cache, as a user's runs do: the resumed run loads the programs the others wrote.
    cached = {**env(), compile_cache.CHOICE: str(tmp_path / "xla")}
    reference = tmp_path / "uninterrupted"
    assert run(command(small_model, reference, *extra), env=cached).returncode == 0

    workdir = tmp_path / "killed"
    cmd = command(small_model, workdir, *extra)
    proc = subprocess.Popen(cmd, cwd=REPO, env=cached, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not _complete_steps(workdir / "checkpoint") and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = _complete_steps(workdir / "checkpoint")[-1]
    assert latest < 30, "the run finished before it could be killed"
    # A save cut short by the kill: orbax's temporary directory of a later step, half-written. It must be ignored.
    partial = workdir / "checkpoint" / f"{latest + 3}.orbax-checkpoint-tmp-1234567890"
    (partial / "state").mkdir(parents=True, exist_ok=True)
    (partial / "state" / "garbage").write_bytes(b"\0" * 100)

    result = run(cmd, env=cached)
    assert result.returncode == 0, result.stderr[-3000:]
    ours, theirs = exported(workdir), exported(reference)
    assert ours.keys() == theirs.keys()
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    steps = [json.loads(line)["step"] for line in (workdir / "metrics" / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 30 and latest + 1 in steps


@pytest.mark.slow
def test_two_distributed_processes_match_one_process(small_model, tmp_path):
    extra = ("--config.max_steps=2", "--config.mesh.fsdp=-1")
    single = tmp_path / "single"
    assert run(command(small_model, single, *extra)).returncode == 0
    multi = tmp_path / "multi"
    script = REPO / "launch" / "local_multiprocess.sh"
    result = run(
        ["bash", str(script), "2", *command(small_model, multi, *extra)[3:]],
        env={**env(), "PYTHON": sys.executable, "DEVICES_PER_PROCESS": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ours, theirs = exported(multi), exported(single)
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-5, err_msg=name)
