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


@pytest.mark.parametrize("method", METHODS)
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


def test_demo_runs_sft_then_each_method_from_the_same_start(tmp_path):
    """configs/demo.py (the README's first command) at test size: SFT, then GRPO and LENS from its export; the
    table and results.json hold every row, and both methods' start evaluations are the same policy's."""
    config = importlib.import_module("configs.demo").get_config()
    config.workdir = str(tmp_path)
    config.sft.max_steps = 2
    config.sft.batch_size = 8
    config.sft.optimizer.warmup_steps = 1
    config.sft.checkpoint.every = 2
    for name in config.methods:
        small = shrunk(name, "", "")
        for block in ("rl", "eval"):
            config.methods[name][block].update(small[block].to_dict())
        config.methods[name].batch_size, config.methods[name].micro_batch_size = small.batch_size, 0
        config.methods[name].rl.train_difficulties = (1,)
    rows = train.get_trainer(config.trainer)(config)
    assert list(rows) == ["sft start", "grpo", "lens"]
    starts = []
    for name in ("grpo", "lens"):
        with open(tmp_path / name / "eval_rl.json", encoding="utf-8") as f:
            starts.append({k: v for k, v in json.load(f).items() if k.startswith("start/")})
        assert 0.0 <= rows[name]["mean_all_wrong_frac"] <= 1.0
    assert starts[0] == starts[1] and starts[0]["start/pass@4/d2"] == rows["sft start"]["pass@4/d2"]
    text = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("| method | pass@1 | pass@4 | pass@1 d1 | pass@4 d1 | pass@1 d2 |")
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert results["rows"] == rows

    # Running the main job again in the same directory resumes every finished run and reports the same results.
    assert train.get_trainer(config.trainer)(config) == rows
    assert (tmp_path / "results.md").read_text(encoding="utf-8") == text
    assert json.loads((tmp_path / "results.json").read_text(encoding="utf-8")) == results
