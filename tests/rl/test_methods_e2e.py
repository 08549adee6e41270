"""Every method's tiny config runs end to end through the trainer registry (a couple of rollouts, shrunk)."""

import importlib
import json
import os

import numpy as np
import pytest

from nsa_jax import models, train

METHODS = ("grpo", "drgrpo", "lens", "nsr", "psr", "wreinforce", "ngrpo", "rft")


@pytest.fixture(scope="module")
def start_dir(tmp_path_factory) -> str:
    """A one-layer version of the built-in tiny model with its character tokenizer, freshly initialised (no SFT:
    these tests check the plumbing, not learning; one layer keeps CPU compilation short)."""
    tiny = tmp_path_factory.mktemp("tiny")
    models.tiny_model_dir(tiny, seed=0)
    cfg = models.load_config(tiny).replace(num_hidden_layers=1, hidden_size=64, intermediate_size=128, head_dim=16)
    path = tmp_path_factory.mktemp("micro")
    models.save_pretrained(models.init_model(cfg, seed=0), path, tokenizer_from=tiny)
    return str(path)


def shrunk(method: str, start: str, workdir: str):
    """The method's tiny config at test size: 1 rollout of 2 prompts x 4 responses, 2 PPO epochs, 2 micro-batches
    of one group each, on a mesh of 4 batch shards (fsdp) x 2 tensor shards (a micro-batch of 4 rows does not split
    over 8 batch devices, which the trainer refuses)."""
    c = importlib.import_module("configs.rl_tiny").get_config(method)
    c.workdir = workdir
    c.model.path = start
    c.rl.num_rollouts = 1
    c.rl.prompts_per_rollout = 2
    c.rl.group_size = 4
    c.rl.ppo_epochs = 2
    c.rl.max_new_tokens = 16
    c.batch_size = 8
    c.micro_batch_size = 4
    c.mesh.fsdp, c.mesh.tensor = 4, 2
    c.eval.difficulties = (1, 2)
    c.eval.num_problems = 1
    c.eval.samples = 4  # the same sampler program as the rollouts (2 prompts x 4)
    c.eval.batch_size = 2
    c.eval.ks = (1, 4)
    c.eval.max_new_tokens = 16
    c.eval.every = 1
    if "max_len" in c.rl.loss_kwargs:
        c.rl.loss_kwargs.max_len = c.rl.max_new_tokens
    return c


# The main job's four online methods run end to end in tests/test_main_job.py, through the same trainer; here they
# are in the slow set, and the default suite keeps the other four.
IN_MAIN_JOB = {"grpo", "lens", "nsr", "rft"}


@pytest.mark.parametrize(
    "method", [pytest.param(m, marks=pytest.mark.slow) if m in IN_MAIN_JOB else m for m in METHODS]
)
def test_tiny_config_runs_end_to_end(method, start_dir, tmp_path):
    config = shrunk(method, start_dir, str(tmp_path))
    train.get_trainer(config.trainer)(config)
    with open(os.path.join(tmp_path, "metrics", "metrics.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records] == [0, 1]
    last = records[-1]
    for key in (
        "loss",
        "grad_norm",
        "reward",
        "all_wrong_frac",
        "all_right_frac",
        "mismatch_ratio_mean",
        "eval/pass@1",
        "eval/pass@4",
        "eval/pass@1/d2",
    ):
        assert np.isfinite(last[key]), key
    # The trainer's own log-probs agree with the sampler's (same model, same numbers up to float reordering).
    assert abs(last["mismatch_ratio_mean"] - 1.0) < 1e-3
    with open(os.path.join(tmp_path, "eval_rl.json"), encoding="utf-8") as f:
        assert json.load(f)["method"] == config.rl.loss
