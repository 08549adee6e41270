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


@pytest.mark.slow  # RL's own tests cover the loop; this adds only the reward function's wiring
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


def test_sources_of_negatives_pair_on_the_same_prompts():
    chosen = [["c0"], [], ["c2"], ["c3"]]
    rejection = [["w0"], ["w1"], ["w2a", "w2b"], []]
    generated = [["g0"], ["g1"], ["g2"], ["g3"]]
    random = pns.random_negatives(rejection, seed=0)
    assert all(r[0] not in rejection[q] for q, r in enumerate(random))  # another prompt's wrong answer
    problems = tasks.get_task("arith").sample("train", 4, seed=0, difficulty=1)
    pairs = pns.build_pairs(problems, chosen, {"pns": generated, "rejection": rejection, "random": random})
    # Prompt 1 has no correct answer, prompt 3 no rejection-sampled negative: only prompts 0 and 2 serve all three.
    for source in ("pns", "rejection", "random"):
        assert [x["prompt"] for x in pairs[source]] == [problems[0].prompt, problems[2].prompt]
        assert [x["chosen"] for x in pairs[source]] == ["c0", "c2"]
    assert [x["rejected"] for x in pairs["pns"]] == ["g0", "g2"]
    assert [x["rejected"] for x in pairs["rejection"]] == ["w0", "w2a"]
    right, wrong = pns.split_by_rewards(["a", "b", "c", "d"], np.array([1.0, 0.0, 0.0, 0.0]), 2)
    assert right == [["a"], []] and wrong == [["b"], ["c", "d"]]


def test_correct_prefix_share_and_plausibility():
    task = tasks.get_task("arith")
    p = task.sample("train", 1, seed=3, difficulty=2)[0]  # three steps and an answer line: 4 labelled lines
    lines = p.solution.split("\n")
    late = "\n".join([*lines[:2], lines[2].rsplit("=", 1)[0] + "= 0", "#### 0"])  # steps 1-2 right, then wrong
    assert pns.correct_prefix_share(task, p, late) == 0.5
    assert pns.correct_prefix_share(task, p, p.solution) == 1.0
    assert pns.correct_prefix_share(task, p, "") == 0.0
    report = pns.plausibility(
        task, [{"prompt": p.prompt, "chosen": p.solution, "rejected": late}], {p.prompt: p}, lambda ps, rs: np.zeros(len(rs))
    )
    assert report["format_pass"] == 1.0 and report["correct_steps_before_error"] == 0.5
    assert report["length_negative"] == len(late) and report["rm_correct"] == 0.0


def test_pairs_trainer_writes_the_three_sources_and_the_report(heads, tmp_path):
    """A fresh one-layer policy answers wrong almost always: the run must still write every file (maybe empty)."""
    start, zero = heads
    c = importlib.import_module("configs.pns_pairs_tiny").get_config()
    c.workdir, c.model.path, c.pns.generator_dir, c.pns.rm_dir = str(tmp_path), start, start, zero
    c.pns.num_prompts, c.pns.samples, c.pns.prompts_per_call, c.rl.max_new_tokens = 4, 4, 4, 16
    report = train.get_trainer(c.trainer)(c)
    assert set(report) == {"pns", "rejection", "random", "counts"} and report["counts"]["prompts"] == 4
    sizes = {s: len((tmp_path / f"pairs_{s}.jsonl").read_text(encoding="utf-8").splitlines()) for s in pns.SOURCES}
    assert len(set(sizes.values())) == 1  # the same number of pairs from every source
    assert json.loads((tmp_path / "plausibility.json").read_text(encoding="utf-8")) == report
    assert train.get_trainer(c.trainer)(c) == report  # finished: read back, not redone
