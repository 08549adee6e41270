"""BCPG-NSA stage 1, the stored data set: mixed groups kept, all-right / all-wrong ones dropped and counted; it
reloads identically from disk and splits by group over processes."""

import dataclasses

import jax
import numpy as np
from rl_helpers import one_layer_start, synthetic_rollout

from nsa_jax import models, parallel, tasks
from nsa_jax.rollouts.offline import OfflineSet, collect_offline, from_rollouts
from nsa_jax.train.sft import format_prompt


def _problems(n):
    return tasks.get_task("arith").sample("train", n, seed=5, difficulty=1)


def _assert_same(a: OfflineSet, b: OfflineSet) -> None:
    assert a.batch.tokens.keys() == b.batch.tokens.keys() and a.group_size == b.group_size
    for k, v in a.batch.arrays().items():
        np.testing.assert_array_equal(v, b.batch.arrays()[k], err_msg=k)
        assert v.dtype == b.batch.arrays()[k].dtype, k
    assert a.problems == b.problems and a.responses == b.responses and a.stats == b.stats


def test_mixed_groups_are_kept_and_the_set_reloads_identically(tmp_path):
    # groups of 4: mixed, all right, all wrong, mixed, mixed
    rewards = [1, 0, 0, 0] + [1] * 4 + [0] * 4 + [0, 1, 1, 0] + [0, 0, 1, 1]
    rollout = dataclasses.replace(synthetic_rollout(rewards, seed=3), responses=[f"response {i}" for i in range(20)])
    problems = _problems(5)
    offline = from_rollouts([rollout], problems)
    assert offline.stats == {"prompts": 5, "dropped_all_right": 1, "dropped_all_wrong": 1, "kept": 3}
    kept = np.r_[0:4, 12:20]
    np.testing.assert_array_equal(offline.batch.tokens["input_ids"], rollout.input_ids[kept])
    np.testing.assert_array_equal(offline.batch.tokens["logp_b"], rollout.sampler_logp[kept])
    np.testing.assert_array_equal(offline.batch.rows["rewards"], rollout.rewards[kept])
    assert offline.problems == [problems[0], problems[3], problems[4]]
    assert offline.responses == [f"response {i}" for i in kept]

    offline.save(str(tmp_path / "set"))
    _assert_same(OfflineSet.load(str(tmp_path / "set")), offline)
    offline.save(str(tmp_path / "set"))  # writing again replaces it whole
    _assert_same(OfflineSet.load(str(tmp_path / "set")), offline)

    first, second = offline.shard(0, 2), offline.shard(1, 2)
    assert first.problems == [problems[0], problems[4]] and second.problems == [problems[3]]
    np.testing.assert_array_equal(second.batch.tokens["input_ids"], rollout.input_ids[12:16])
    assert len(first.batch) + len(second.batch) == len(offline.batch)


def test_collect_offline_samples_every_problem_with_the_behaviour_policy(tmp_path):
    start = one_layer_start(tmp_path / "start")
    model, tokenizer = models.from_pretrained(start), models.load_tokenizer(start)
    problems = _problems(3)

    def reward(row_problems, responses):  # in each call, group q has q + 1 right answers of 4: every group mixed
        return np.array([float(i % 4 < i // 4 + 1) for i in range(len(responses))])

    offline = collect_offline(
        model,
        tokenizer,
        problems,
        group_size=4,
        prompts_per_call=2,  # 3 problems: the second call is padded with a repeat, which is dropped
        key=jax.random.PRNGKey(0),
        prompt_fn=format_prompt,
        reward_fn=reward,
        max_prompt_len=48,
        max_new_tokens=8,
        mesh=parallel.make_mesh(1, -1, 1),
    )
    assert offline.stats == {"prompts": 3, "dropped_all_right": 0, "dropped_all_wrong": 0, "kept": 3}
    assert offline.problems == problems and len(offline.responses) == 12
    mask = offline.batch.tokens["loss_mask"]
    assert (mask.sum(axis=1) > 0).all() and (offline.batch.tokens["logp_b"][mask > 0] < 0).all()
    assert (offline.batch.tokens["logp_b"][mask == 0] == 0).all()
    offline.save(str(tmp_path / "set"))
    _assert_same(OfflineSet.load(str(tmp_path / "set")), offline)
