"""DPO through the trainer registry on a toy pair set (arith problems: the canonical solution against one whose
last step and answer are wrong): preference accuracy on the pairs rises from 0 (policy = reference) to nearly 1;
pairs from a stored offline set are each group's correct against its wrong answers; a rerun reports the same."""

import importlib
import json

import numpy as np
import pytest

from nsa_jax import tasks, train
from nsa_jax.rollouts import Batch, OfflineSet
from nsa_jax.train.preference.dpo import pairs_from_offline
from tests.rl.rl_helpers import one_layer_start, wrong_last_step


@pytest.fixture(scope="module")
def start_dir(tmp_path_factory) -> str:
    return one_layer_start(tmp_path_factory.mktemp("m"))


def test_dpo_raises_preference_accuracy_on_toy_pairs(start_dir, tmp_path):
    problems = tasks.get_task("arith").sample("train", 16, seed=2, difficulty=1)
    lines = [{"prompt": p.prompt, "chosen": p.solution, "rejected": wrong_last_step(p)} for p in problems]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    c = importlib.import_module("configs.dpo_tiny").get_config()
    c.workdir, c.model.path, c.dpo.pairs = str(tmp_path / "run"), start_dir, str(tmp_path / "pairs.jsonl")
    c.batch_size, c.dpo.epochs, c.optimizer.learning_rate = 8, 16, 3e-3  # 4 pairs a step, 4 steps an epoch
    c.eval.enabled = False  # held-out pass@k: test_dpo_reports_heldout_gains
    train.get_trainer(c.trainer)(c)
    with open(tmp_path / "run" / "metrics" / "metrics.jsonl", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    assert len(records) == 64
    assert all(r["shared_prompt"] == 1.0 for r in records)  # the columns a pair's prompts share, computed once
    # The first step's policy is the reference: margin 0 up to float rounding (the reference sums come from the
    # scoring program, the policy's from the train step), loss log 2.
    assert abs(records[0]["reward_margin"]) < 1e-5 and records[0]["loss"] == pytest.approx(np.log(2), abs=1e-5)
    # Measured (last epoch): accuracy 15/16, mean implicit-reward margin 1.5 (beta 0.1), natively and with AVX2.
    last_epoch = records[-4:]
    assert np.mean([r["reward_accuracy"] for r in last_epoch]) >= 0.75
    assert np.mean([r["reward_margin"] for r in last_epoch]) > 0.5
    summary = (tmp_path / "run" / "eval_dpo.json").read_text(encoding="utf-8")
    assert json.loads(summary)["pairs"] == 16
    train.get_trainer(c.trainer)(c)  # finished: resumes at the end, trains nothing, writes the same summary
    assert (tmp_path / "run" / "eval_dpo.json").read_text(encoding="utf-8") == summary


def test_pairs_from_an_offline_set_match_right_with_wrong_in_each_group():
    ids = np.arange(8 * 3).reshape(8, 3)
    rewards = np.array([1, 0, 0, 1, 0, 0, 0, 1], np.float32)  # groups of 4: right at 0, 3; right at 7 only
    batch = Batch({"input_ids": ids, "attention_mask": ids * 0 + 1, "loss_mask": ids * 0.0}, {"rewards": rewards}, 4)
    pairs = pairs_from_offline(OfflineSet(batch, [None, None], [""] * 8, {}))
    np.testing.assert_array_equal(pairs.tokens["input_ids"], ids[[0, 1, 3, 2, 7, 4]])
    assert pairs.group_size == 2 and "logp_b" not in pairs.tokens


def test_dpo_reports_heldout_gains(start_dir, tmp_path):
    """With `eval.enabled`, eval_dpo.json holds the held-out pass@k before and after and each gain's interval, as the
    RL trainer's summary does."""
    problems = tasks.get_task("arith").sample("train", 4, seed=2, difficulty=1)
    lines = [{"prompt": p.prompt, "chosen": p.solution, "rejected": wrong_last_step(p)} for p in problems]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    c = importlib.import_module("configs.dpo_tiny").get_config()
    c.workdir, c.model.path, c.dpo.pairs = str(tmp_path / "run"), start_dir, str(tmp_path / "pairs.jsonl")
    c.batch_size, c.dpo.epochs = 8, 1
    c.eval.num_problems, c.eval.samples, c.eval.batch_size, c.eval.ks, c.eval.max_new_tokens = 4, 4, 4, (1, 4), 16
    train.get_trainer(c.trainer)(c)
    summary = json.loads((tmp_path / "run" / "eval_dpo.json").read_text(encoding="utf-8"))
    assert summary["gain/pass@1"] == pytest.approx(summary["pass@1"] - summary["start/pass@1"])
    assert summary["gain/pass@4/low"] <= summary["gain/pass@4"] <= summary["gain/pass@4/high"]
    assert summary["loss"] > 0 and summary["pairs"] == 4
