"""The PRM trainer and judge on a stored set of real arith problems (canonical solutions, and solutions whose last
step is garbled so that step and the answer are wrong: a pattern a fresh one-layer backbone can learn to see on any
prompt): on held-out prompts' wrong responses the PRM judge's recall of correct steps rises from 0 (a fresh head's
sigmoid(0) = 0.5 is not above the 0.5 threshold) with high precision; the exported head reloads into the judge
with the same labels; the offline pipeline's "prm" step labels are that judge's, with judge_report.json scoring it
against the ground truth on another stored set; the step helpers agree with a hand-made case."""

import importlib
import json

import numpy as np
import pytest

from nsa_jax import judges, models, train
from nsa_jax.train.offline.judging import oracle_steps
from nsa_jax.train.preference.prm import prm_batch
from nsa_jax.train.rl.trainer import TaskSetting
from tests.rl.rl_helpers import G, one_layer_start, stored_set


def garbled_last_step(problem, k: int) -> str:
    """Responses 0-1 canonical; 2-3 with the last step's result replaced by '?' and the answer off by one."""
    if k < 2:
        return problem.solution
    *head, last, _ = problem.solution.split("\n")
    return "\n".join([*head, last.rsplit("=", 1)[0] + "= ?", f"#### {int(problem.answer) + 1}"])


def _config(start: str, workdir: str):
    c = importlib.import_module("configs.prm_tiny").get_config()
    c.workdir, c.model.path = workdir, start
    c.batch_size, c.prm.epochs, c.prm.heldout_frac = 4 * G, 30, 0.3
    c.optimizer.learning_rate = 3e-3
    c.checkpoint.every = 1000
    c.eval.enabled = False  # the policy's own held-out pass@k is not what this trainer measures
    return c


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(start dir, PRM workdir, its config): one PRM trained on 24 problems x G responses."""
    root = tmp_path_factory.mktemp("prm")
    start = one_layer_start(root / "start")
    stored_set(models.load_tokenizer(start), groups=24, respond=garbled_last_step).save(str(root / "run" / "dataset"))
    config = _config(start, str(root / "run"))
    train.get_trainer("prm")(config)
    return start, root / "run", config


def test_prm_learns_step_labels_that_hold_on_heldout_prompts(trained):
    start, run, config = trained
    tokenizer = models.load_tokenizer(start)
    report = json.loads((run / "eval_prm.json").read_text(encoding="utf-8"))
    assert report["heldout_rows"] >= 4 * G and report["train_rows"] >= 12 * G
    assert report["start"]["recall"] == 0.0 and report["start"]["precision"] == 1.0  # nothing mined at the start
    # Measured: held-out recall 1.0, precision 1.0, accuracy 1.0.
    assert report["heldout"]["recall"] >= 0.8 and report["heldout"]["precision"] >= 0.8, report

    # The exported head, reloaded into a judge, labels the held-out set as the trainer's evaluation did.
    head = models.from_pretrained_head(run / "export")
    offline = stored_set(tokenizer, groups=24, respond=garbled_last_step)
    labels = oracle_steps(offline, TaskSetting(config))
    data = prm_batch(offline, labels)
    wrong = np.flatnonzero(data.rows["rewards"] <= 0.5)
    judge = judges.PRMJudge(head, threshold=0.5, rows=8)
    tokens = {k: data.tokens[k][wrong] for k in ("input_ids", "attention_mask")}
    mined = judge.label(tokens, data.tokens["step_ids"][wrong], labels["step_correct"].shape[1])
    truth = labels["step_correct"][wrong]
    assert np.mean(mined[truth]) >= 0.8  # the correct first steps of wrong responses, training prompts included


def test_step_ends_and_values():
    step_ids = np.array([[-1, 0, 0, 1, 1, 1, -1], [-1, -1, 0, 2, 2, -1, -1]])
    np.testing.assert_array_equal(judges.step_ends(step_ids), [[0, 0, 1, 0, 0, 1, 0], [0, 0, 1, 0, 1, 0, 0]])
    values = np.arange(14, dtype=np.float32).reshape(2, 7)
    got = judges.step_values(values, step_ids, 3)
    np.testing.assert_array_equal(got[0], [2.0, 5.0, np.nan])
    np.testing.assert_array_equal(got[1], [9.0, np.nan, 11.0])


@pytest.mark.slow  # slow like the consensus pipeline test, which covers more
def test_offline_pipeline_labels_steps_with_the_prm_and_reports_it(trained, tmp_path):
    start, run, _ = trained
    tokenizer = models.load_tokenizer(start)

    c = importlib.import_module("configs.offline_tiny").get_config("bcpg_nsa")
    c.workdir, c.model.path = str(tmp_path / "nsa"), start
    c.offline.step_labels, c.offline.prm_dir = "prm", str(run / "export")
    c.batch_size, c.offline.epochs, c.eval.enabled = 2 * G, 1, False
    c.metrics.tensorboard = False
    other = stored_set(tokenizer, groups=6, respond=garbled_last_step, seed=12)  # prompts the PRM never saw
    other.save(str(tmp_path / "nsa" / "dataset"))
    train.get_trainer("offline")(c)

    report = json.loads((tmp_path / "nsa" / "judge_report.json").read_text(encoding="utf-8"))
    assert set(report) == {"prm", "oracle", "counts"}
    assert report["oracle"]["precision"] == 1.0 and report["oracle"]["recall"] == 1.0
    # Measured: the PRM's precision and recall 1.0 on the 12 wrong responses (24 correct steps of 48).
    assert report["prm"]["recall"] >= 0.8 and report["prm"]["precision"] >= 0.8, report

    # The stored labels are the judge's own, step for step, and the report's counts follow from them.
    with np.load(tmp_path / "nsa" / "steps_prm.npz") as f:
        step_ids, stored = f["step_ids"], f["step_correct"]
    judge = judges.PRMJudge(models.from_pretrained_head(run / "export"), threshold=0.5, rows=8)
    np.testing.assert_array_equal(stored, judge.label(other.batch.tokens, step_ids, stored.shape[1]))
    wrong = other.batch.rows["rewards"] <= 0.5
    assert report["prm"]["mined_steps"] == stored[wrong].sum()


@pytest.mark.slow  # about 40 s (sampling the completions); the labels themselves: tests/judges/test_montecarlo.py
def test_prm_trains_on_monte_carlo_labels_and_is_scored_against_the_truth(tmp_path):
    """prm.labels="mc": the labels come from completions of the (here random) start model, the held-out judge
    quality from the task's checker; a fresh start never completes to the answer, so every label before the last
    step is 0 and the trained PRM mines little."""
    start = one_layer_start(tmp_path / "start")
    stored_set(models.load_tokenizer(start), groups=8, respond=garbled_last_step).save(
        str(tmp_path / "run" / "dataset")
    )
    c = _config(start, str(tmp_path / "run"))
    c.prm.labels, c.prm.mc_samples, c.prm.epochs, c.rl.max_new_tokens = "mc", 2, 2, 16
    c.offline.prompts_per_call = 16
    train.get_trainer("prm")(c)
    report = json.loads((run_dir := tmp_path / "run" / "eval_prm.json").read_text(encoding="utf-8"))
    assert report["heldout"]["wrong_responses"] > 0, run_dir
    # Scored against the checker, which calls the first steps of every wrong response right: recall well below 1.
    assert report["heldout"]["recall"] < 0.5
