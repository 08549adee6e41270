"""PNS's composite reward as the RL trainer's reward function, on real arith problems and hand-made responses with
heads whose scores are known (a zero head scores 0: sigmoid 0.5); and the negative-generator trainer at test size."""

import importlib
import json

import jax.numpy as jnp
import numpy as np
import pytest

from nsa_jax import judges, models, pns, tasks, train
from nsa_jax.train.sft import format_prompt
from tests.rl.rl_helpers import one_layer_start


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    """(start dir, zero-head dir): a fresh head on the one-layer start, saved as a head directory."""
    root = tmp_path_factory.mktemp("pns")
    start = one_layer_start(root / "start")
    models.save_head(models.from_pretrained_head(start), root / "zero", tokenizer_from=start)
    return start, str(root / "zero")


def _reward(start, head_dir, threshold, rm=None):
    task = tasks.get_task("arith")
    return pns.CompositeReward(
        task,
        models.load_tokenizer(start),
        rm=rm or models.from_pretrained_head(head_dir),
        prm=judges.PRMJudge(models.from_pretrained_head(head_dir), threshold=threshold, rows=4),
        prompt_fn=format_prompt,
        width=128,
        rows=4,
    )


def test_composite_reward_of_right_wrong_and_malformed_answers(heads):
    start, zero = heads
    p = tasks.get_task("arith").sample("train", 1, seed=3, difficulty=1)[0]
    *steps, _ = p.solution.split("\n")
    wrong = "\n".join([*steps, f"#### {int(p.answer) + 1}"])  # every step right, the answer wrong
    responses = [p.solution, wrong, steps[0], "#### 5"]  # right; wrong; no answer line; no reasoning line
    for threshold, cot in ((0.4, 1.0), (0.6, 0.0)):  # the zero PRM's 0.5 is above 0.4 and below 0.6
        reward = _reward(start, zero, threshold)
        parts = reward.parts([p] * 4, responses)
        np.testing.assert_array_equal(parts["correct"], [1, 0, 0, 0])
        np.testing.assert_array_equal(parts["format_ok"], [1, 1, 0, 0])
        np.testing.assert_array_equal(parts["rm_score"], [0, 0, 0, 0])
        assert parts["cot_score"][1] == cot
        # correct: w_fmt; wrong: w_fmt + w_inv + w_rm * sigmoid(0) + w_cot * cot; malformed: 0
        np.testing.assert_allclose(reward([p] * 4, responses), [0.2, 0.2 + 0.4 + 0.1 + 0.2 * cot, 0, 0], atol=1e-6)


def test_reward_model_scores_do_not_depend_on_the_batch(heads):
    """A row's reward-model score is the same alone and among others (padding rows and chunking change nothing)."""
    start, zero = heads
    rm = models.from_pretrained_head(zero)
    rm.score[...] = jnp.asarray(np.random.default_rng(0).normal(size=rm.config.hidden_size), jnp.float32)
    reward = _reward(start, zero, 0.5, rm=rm)
    problems = tasks.get_task("arith").sample("train", 5, seed=4, difficulty=1)
    together = reward.parts(problems, [q.solution for q in problems])["rm_score"]
    alone = [reward.parts([q], [q.solution])["rm_score"][0] for q in problems]
    assert len(set(np.round(together, 4))) > 1  # the scores differ between responses: a real signal
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-5)


def test_generator_trainer_runs_reverse_rl_on_the_composite_reward(heads, tmp_path):
    start, zero = heads
    c = importlib.import_module("configs.pns_tiny").get_config()
    c.workdir, c.model.path, c.pns.rm_dir, c.pns.prm_dir = str(tmp_path), start, zero, zero
    c.rl.num_rollouts, c.rl.prompts_per_rollout, c.rl.group_size, c.rl.max_new_tokens = 2, 2, 4, 16
    c.batch_size, c.eval.num_problems, c.eval.samples, c.eval.batch_size = 8, 2, 4, 2
    c.eval.ks, c.eval.max_new_tokens, c.export.enabled, c.optimizer.learning_rate = (1, 4), 16, False, 1e-3
    train.get_trainer(c.trainer)(c)
    with open(tmp_path / "metrics" / "metrics.jsonl", encoding="utf-8") as f:
        records = [json.loads(line) for line in f if "reward" in line]
    assert [r["step"] for r in records] == [1, 2]
    assert all(0.0 <= r["reward"] <= 1.0 for r in records)
    summary = json.loads((tmp_path / "eval_rl.json").read_text(encoding="utf-8"))
    assert "pass@1" in summary and "start/pass@1" in summary  # the held-out evaluation verifies, as in RL
