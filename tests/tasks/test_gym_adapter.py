"""reasoning-gym adapter (optional extra): skipped when reasoning-gym is not installed."""

import time

import numpy as np
import pytest

from nsa_jax import tasks

pytest.importorskip("reasoning_gym")


@pytest.fixture(scope="module")
def chain_sum():
    # Start the shared fork server with its math-verify preload first (as a trainer does on its first reward), so
    # the gym pool does not start it bare and slow down the verifier tests that follow.
    tasks.get_verifier_pool().warm_up()
    task = tasks.get_task("gym", dataset="chain_sum", deadline_s=60.0)
    p = task.sample("train", 1, seed=0)[0]
    assert task.verify(f"#### {p.answer}", p) == 1.0  # waits for the worker to import reasoning-gym once
    task.deadline_s = 10.0
    return task


def test_sampling_deterministic_and_disjoint(chain_sum):
    a = chain_sum.sample("train", 40, seed=1)
    assert a == chain_sum.sample("train", 40, seed=1)
    assert [p.prompt for p in a] != [p.prompt for p in chain_sum.sample("train", 40, seed=2)]
    test = chain_sum.sample("test", 20, seed=1)
    assert not {p.prompt for p in a} & {p.prompt for p in test}
    assert all(p.task == "gym:chain_sum" and p.solution == f"#### {p.answer}" for p in a + test)
    with pytest.raises(ValueError, match="difficulty"):
        chain_sum.sample("train", 1, difficulty=2)


def test_score_answer_is_the_verifier(chain_sum):
    problems = chain_sum.sample("test", 4, seed=3)
    responses = [
        f"so\n#### {problems[0].answer}",
        f"the answer is {int(problems[1].answer) + 1}",
        "no answer",
        "#### __import__('os').system('touch x')",
    ]
    start = time.monotonic()
    scores = chain_sum.verify_batch(responses, problems)
    assert time.monotonic() - start < 10.0 + 5.0
    np.testing.assert_array_equal(scores, [1, 0, 0, 0])
    with pytest.raises(NotImplementedError):
        chain_sum.check_steps(problems[0].solution, problems[0])


def test_bad_dataset_name_fails_early():
    with pytest.raises(Exception, match="no_such"):
        tasks.get_task("gym", dataset="no_such_dataset_xyz")
