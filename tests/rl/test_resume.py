"""Checkpoint and resume of the RL trainer between rollouts: a run cut after its first rollout and restarted with the
same config (same workdir) ends with the parameters of the run that went straight through, appends to the same
metrics file, and refuses a checkpoint written for different data."""

import importlib
import json
import os

import jax
import numpy as np
import pytest
from flax import nnx
from jax.experimental.compilation_cache import compilation_cache

from nsa_jax import models, train
from nsa_jax.models.tiny import TINY_DIR
from nsa_jax.train import rl


@pytest.fixture(scope="module")
def start_dir(tmp_path_factory) -> str:
    """The one-layer start model of test_methods_e2e.py (same shape, same seed), with the shipped character
    tokenizer; freshly initialised: this checks the plumbing, not learning."""
    cfg = models.load_config(TINY_DIR).replace(num_hidden_layers=1, hidden_size=64, intermediate_size=128, head_dim=16)
    path = tmp_path_factory.mktemp("micro")
    models.save_pretrained(models.init_model(cfg, seed=0), path, tokenizer_from=TINY_DIR)
    return str(path)


@pytest.fixture
def compile_once(tmp_path):
    """A persistent compilation cache for this test only: every restart builds a new Learner, whose train step is a
    new jit of the same program; with the cache the restarts load the first run's executable instead of spending
    most of the test compiling it again (as a real restart does with `jax_compilation_cache_dir` set)."""
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    before = {name: getattr(jax.config, name) for name in names}
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    compilation_cache.reset_cache()
    yield
    for name, value in before.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


def _config(start: str, workdir: str):
    """LENS on the miniature at test size: 2 rollouts of 2 prompts x 4 responses, 2 PPO epochs of one Adam step
    each (so the restored optimiser moments and step count matter); LENS because the random start answers everything
    wrong and GRPO would not move at all, a checkpoint after every rollout, no eval."""
    c = importlib.import_module("configs.rl_tiny").get_config("lens")
    c.workdir = workdir
    c.model.path = start
    c.rl.num_rollouts = 2
    c.rl.prompts_per_rollout = 2
    c.rl.group_size = 4
    c.rl.ppo_epochs = 2
    c.rl.max_new_tokens = 16
    c.batch_size = 8
    c.optimizer.learning_rate = 1e-3  # steps large enough that a resume from the wrong state shows
    c.eval.enabled = False
    c.checkpoint.every = 1
    return c


class _Interrupted(Exception):
    pass


def _interrupted_at_second_rollout(config, monkeypatch) -> None:
    """Runs `config` until it is about to sample its second rollout (after checkpoint 1 was written), then stops it
    as a crash would."""
    rollout = rl.RLRun.rollout

    def crash_at_second(job, index):
        if index == 1:
            raise _Interrupted
        return rollout(job, index)

    monkeypatch.setattr(rl.RLRun, "rollout", crash_at_second)
    with pytest.raises(_Interrupted):
        train.get_trainer("rl")(config)
    monkeypatch.undo()


def _params(model) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(nnx.state(model, nnx.Param)))]


def _records(workdir: str) -> list[dict]:
    with open(os.path.join(workdir, "metrics", "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_rollout_resumed_from_checkpoint_equals_the_straight_run(start_dir, tmp_path, monkeypatch, compile_once):
    straight_dir, resumed_dir = str(tmp_path / "straight"), str(tmp_path / "resumed")
    start = _params(models.from_pretrained(start_dir))
    straight = _params(train.get_trainer("rl")(_config(start_dir, straight_dir)))

    # The same config, cut when it is about to sample its second rollout (after checkpoint 1 was written) ...
    _interrupted_at_second_rollout(_config(start_dir, resumed_dir), monkeypatch)
    assert sorted(os.listdir(os.path.join(resumed_dir, "checkpoint"))) == ["1"]
    assert [r["step"] for r in _records(resumed_dir)] == [1]

    # ... then restarted: it resumes from checkpoint 1 and does only the second rollout.
    resumed = _params(train.get_trainer("rl")(_config(start_dir, resumed_dir)))
    for a, b in zip(resumed, straight, strict=True):
        np.testing.assert_array_equal(a, b)
    # The run moved the parameters, so the equality above is not the trivial one.
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(resumed, start, strict=True)) > 1e-4

    records = _records(resumed_dir)
    assert [r["step"] for r in records] == [1, 2]
    # The resumed second rollout replays the straight run's (same prompts, same sampling key, same policy).
    second = _records(straight_dir)[-1]
    for key in ("reward", "response_tokens", "loss", "grad_norm"):
        assert records[-1][key] == second[key], key

    # A restart whose data settings differ from the checkpoint's is refused, not silently mixed.
    for setting, value in (("data.seed", 1), ("rl.train_difficulties", (2,))):
        changed = _config(start_dir, resumed_dir)
        section, knob = setting.split(".")
        changed[section][knob] = value
        with pytest.raises(ValueError, match="checkpoint 2 in .* was written for data"):
            train.get_trainer("rl")(changed)
    assert [r["step"] for r in _records(resumed_dir)] == [1, 2]  # the refused restarts wrote nothing


def _evaluating(config):
    """`config` with a held-out evaluation before, after the first and after the last rollout (one problem per level
    x 4 samples: the rollouts' sampler program)."""
    config.eval.enabled = True
    config.eval.difficulties = (1, 2)
    config.eval.num_problems = 1
    config.eval.samples = 4
    config.eval.batch_size = 2
    config.eval.ks = (1, 4)
    config.eval.max_new_tokens = 16
    config.eval.every = 1
    return config


def _deterministic(records: list[dict]) -> list[dict]:
    """The records without wall-clock values (phase times and throughput differ between any two runs)."""
    return [{k: v for k, v in r.items() if not k.startswith("time/") and k != "tokens_per_s"} for r in records]


def _summary(workdir: str) -> dict:
    with open(os.path.join(workdir, "eval_rl.json"), encoding="utf-8") as f:
        return json.load(f)


def test_resumed_and_repeated_runs_report_what_the_straight_run_reports(start_dir, tmp_path, monkeypatch, compile_once):
    """eval_rl.json (start and final evaluation, mean group shares) and metrics.jsonl of a run interrupted after its
    first rollout and restarted, and of a finished run started again, equal the straight run's."""
    straight_dir, resumed_dir = str(tmp_path / "straight"), str(tmp_path / "resumed")
    train.get_trainer("rl")(_evaluating(_config(start_dir, straight_dir)))
    straight = _summary(straight_dir)
    assert {"start/pass@1", "pass@1", "start/pass@4/d2", "mean_all_wrong_frac"} <= set(straight)
    # The paired comparison of the last evaluation with the first, from the per-problem files of both.
    assert straight["gain/pass@1"] == pytest.approx(straight["pass@1"] - straight["start/pass@1"])
    assert straight["gain/pass@4/d2/low"] <= straight["gain/pass@4/d2"] <= straight["gain/pass@4/d2/high"]
    assert sorted(os.listdir(os.path.join(straight_dir, "heldout"))) == [f"round_00000{i}.npz" for i in range(3)]

    _interrupted_at_second_rollout(_evaluating(_config(start_dir, resumed_dir)), monkeypatch)
    train.get_trainer("rl")(_evaluating(_config(start_dir, resumed_dir)))
    assert _summary(resumed_dir) == straight
    assert _deterministic(_records(resumed_dir)) == _deterministic(_records(straight_dir))
    assert [r["step"] for r in _records(resumed_dir)] == [0, 1, 2]

    # A finished run started again trains nothing and rewrites the same files.
    before = _records(straight_dir)
    train.get_trainer("rl")(_evaluating(_config(start_dir, straight_dir)))
    assert _summary(straight_dir) == straight
    assert _records(straight_dir) == before
