"""Online RL under `jax.distributed`: two CPU processes (one device each, launched by launch/local_multiprocess.sh
as a pod would be) against one process with two devices, the same mesh. Sampling, verification (process 0's
rewards, broadcast), the update, the held-out evaluation, checkpoints and the export all run; every per-rollout
record, the summary and the exported parameters are the single process's.

LENS, not GRPO: the random start answers every problem wrong, so GRPO's update would be exactly zero and the
parameter comparison empty; LENS moves them on all-wrong groups.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from rl_helpers import one_layer_start

from tests.train.helpers import xla_flags

REPO = Path(__file__).resolve().parents[2]


def _args(start: str, workdir: Path) -> list[str]:
    """configs/rl_tiny.py:lens at test size: 2 rollouts of 2 prompts x 4, evaluation before and after each."""
    return [
        f"--config={REPO / 'configs' / 'rl_tiny.py'}:lens",
        f"--config.model.path={start}",
        f"--config.workdir={workdir}",
        "--config.rl.num_rollouts=2",
        "--config.rl.prompts_per_rollout=2",
        "--config.rl.group_size=4",
        "--config.rl.max_new_tokens=16",
        "--config.batch_size=8",
        "--config.eval.difficulties=(1,)",
        "--config.eval.num_problems=2",
        "--config.eval.samples=4",
        "--config.eval.batch_size=2",
        "--config.eval.ks=(1,4)",
        "--config.eval.max_new_tokens=16",
        "--config.eval.every=1",
        "--config.export.enabled=True",
        "--config.optimizer.learning_rate=1e-3",
        "--config.checkpoint.every=1",
    ]


def _run(command: list[str], **env: str) -> None:
    full_env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHON": sys.executable, **env}
    done = subprocess.run(command, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def _records(workdir: Path) -> list[dict]:
    """metrics.jsonl without wall-clock values."""
    with open(workdir / "metrics" / "metrics.jsonl", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    return [{k: v for k, v in r.items() if not k.startswith("time/") and k != "tokens_per_s"} for r in records]


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
    start = one_layer_start(tmp_path / "start")
    single, multi = tmp_path / "single", tmp_path / "multi"
    _run(
        [sys.executable, "-m", "nsa_jax.main", *_args(start, single)],
        XLA_FLAGS=xla_flags(2),
    )
    _run(["bash", str(REPO / "launch" / "local_multiprocess.sh"), "2", *_args(start, multi)], DEVICES_PER_PROCESS="1")

    ones, twos = _records(single), _records(multi)
    assert [r["step"] for r in twos] == [0, 1, 2]
    for a, b in zip(ones, twos, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], abs=1e-6), (a["step"], key)
    assert ones[1]["verify/items"] == 8 and ones[1]["response_tokens"] > 0  # process 0 verified the whole rollout
    with open(single / "eval_rl.json", encoding="utf-8") as f, open(multi / "eval_rl.json", encoding="utf-8") as g:
        assert json.load(f) == json.load(g)
    start_params = safetensors.numpy.load_file(Path(start) / "model.safetensors")
    theirs = safetensors.numpy.load_file(single / "export" / "model.safetensors")
    ours = safetensors.numpy.load_file(multi / "export" / "model.safetensors")
    assert max(float(np.max(np.abs(theirs[k] - start_params[k]))) for k in theirs) > 1e-4  # the runs trained
    for name in theirs:
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-6, err_msg=name)
