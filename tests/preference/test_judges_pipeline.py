"""Both judges end to end at test size, on stored sets of real arith problems whose wrong responses have a garbled
last step (see test_prm.py): the "llm_judge" trainer fine-tunes a fresh one-layer model into a compact-prompt judge
from ground-truth labels and measures it on held-out prompts; the offline pipeline with `step_labels="consensus"`
labels another set with the PRM and that judge, stores the AND of the two, and reports llm, prm, consensus, or and
oracle against the truth."""

import importlib
import json

import numpy as np
import pytest

from nsa_jax import judges, models, train
from tests.preference.test_prm import _config as prm_config
from tests.preference.test_prm import garbled_last_step
from tests.rl.rl_helpers import G, one_layer_start, stored_set


@pytest.fixture(scope="module")
def start(tmp_path_factory) -> str:
    return one_layer_start(tmp_path_factory.mktemp("m"))


def _judge_config(start: str, workdir: str):
    c = importlib.import_module("configs.llm_judge_tiny").get_config()
    c.workdir, c.model.path = workdir, start
    c.batch_size, c.judge.steps, c.judge.heldout_frac = 16, 300, 0.3
    c.judge.batch_size = 8
    c.optimizer.learning_rate = 3e-3
    c.eval.enabled = False
    return c


@pytest.mark.slow  # about 100 s: a 300-step judge fine-tune, a PRM, the pipeline (so test_prm's pipeline test is
# slow too: this one covers more)
def test_llm_judge_fine_tuned_on_true_labels_and_the_consensus_pipeline(start, tmp_path):
    tokenizer = models.load_tokenizer(start)
    data = stored_set(tokenizer, groups=24, respond=garbled_last_step)
    data.save(str(tmp_path / "judge" / "dataset"))
    judge_config = _judge_config(start, str(tmp_path / "judge"))
    train.get_trainer("llm_judge")(judge_config)
    report = json.loads((tmp_path / "judge" / "eval_llm_judge.json").read_text(encoding="utf-8"))
    held = report["heldout"]
    assert report["examples"] > 0 and held["wrong_responses"] > 0
    # Measured: precision 1.0, recall 0.9, accuracy 0.95, 2 malformed answers of 20 held-out wrong responses.
    assert held["malformed"] <= 0.2 * held["wrong_responses"] and held["accuracy"] >= 0.8, report

    data.save(str(tmp_path / "prm" / "dataset"))
    train.get_trainer("prm")(prm_config(start, str(tmp_path / "prm")))

    c = importlib.import_module("configs.offline_tiny").get_config("bcpg_nsa")
    c.workdir, c.model.path = str(tmp_path / "nsa"), start
    c.offline.step_labels = "consensus"
    c.offline.prm_dir, c.offline.llm_judge_dir = str(tmp_path / "prm" / "export"), str(tmp_path / "judge" / "export")
    c.offline.llm_judge_style, c.offline.llm_judge_format = "compact", "plain"
    c.offline.llm_judge_max_prompt_len, c.offline.llm_judge_max_new_tokens, c.offline.llm_judge_batch_size = 176, 24, 8
    c.batch_size, c.offline.epochs, c.eval.enabled, c.metrics.tensorboard = 2 * G, 1, False, False
    other = stored_set(tokenizer, groups=6, respond=garbled_last_step, seed=12)
    other.save(str(tmp_path / "nsa" / "dataset"))
    train.get_trainer("offline")(c)

    report = json.loads((tmp_path / "nsa" / "judge_report.json").read_text(encoding="utf-8"))
    assert set(report) == {"llm", "prm", "consensus", "or", "oracle", "counts"}
    assert report["counts"]["wrong_responses"] == 12 and "llm_malformed" in report["counts"]
    # Consensus mines no more than either judge, or no fewer. Measured: llm precision 0.833 / recall 0.833, prm
    # 1.0 / 1.0, consensus 1.0 / 0.833, or 0.857 / 1.0 (2 malformed LLM answers).
    mined = {m: report[m]["mined_steps"] for m in ("llm", "prm", "consensus", "or")}
    assert mined["consensus"] <= min(mined["llm"], mined["prm"]) <= max(mined["llm"], mined["prm"]) <= mined["or"]
    with np.load(tmp_path / "nsa" / "steps_consensus.npz") as f:
        stored = f["step_correct"]
    prm = judges.PRMJudge(models.from_pretrained_head(tmp_path / "prm" / "export"), rows=8)
    with np.load(tmp_path / "nsa" / "steps_consensus.npz") as f:
        ids = f["step_ids"]
    prm_labels = prm.label(other.batch.tokens, ids, stored.shape[1])
    assert not np.any(stored & ~prm_labels)  # nothing the PRM rejects is mined
    assert report["consensus"]["mined_steps"] == stored[other.batch.rows["rewards"] <= 0.5].sum()
