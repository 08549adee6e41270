"""pass@k against a brute-force average over all k-subsets; maj@k and bucket accuracy on hand-made cases."""

import itertools
import math

import numpy as np
import pytest

from nsa_jax import eval as ev


def brute_pass_at_k(correct_row, k):
    """Probability that a uniformly random k-subset of the samples holds a correct one, by enumeration."""
    subsets = list(itertools.combinations(range(len(correct_row)), k))
    return sum(any(correct_row[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_matches_enumeration(n):
    rng = np.random.default_rng(n)
    for _ in range(5):
        row = rng.random(n) < rng.random()
        for k in range(1, n + 1):
            got = ev.pass_at_k(n, int(row.sum()), k)
            assert got == pytest.approx(brute_pass_at_k(row, k), abs=1e-12)
            assert got == pytest.approx(1 - math.comb(n - int(row.sum()), k) / math.comb(n, k), abs=1e-12)


def test_pass_at_k_vectorised_and_edges():
    got = ev.pass_at_k(np.array([4, 4, 4, 10]), np.array([0, 4, 1, 3]), 2)
    np.testing.assert_allclose(got, [0.0, 1.0, 0.5, 1 - math.comb(7, 2) / math.comb(10, 2)])
    with pytest.raises(ValueError):
        ev.pass_at_k(3, 1, 4)
    with pytest.raises(ValueError):
        ev.pass_at_k(3, 5, 1)


def test_pass_at_k_curve_and_buckets():
    correct = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    curve = ev.pass_at_k_curve(correct, [1, 4])
    assert curve[1] == pytest.approx((0.25 + 0 + 1) / 3)
    assert curve[4] == pytest.approx(2 / 3)
    by = ev.pass_at_k_by_bucket(correct, [1, 2, 2], [1])
    assert by[1][1] == pytest.approx(0.25) and by[2][1] == pytest.approx(0.5)


def test_maj_at_k():
    answers = [["3", "4", "4", None], ["7", "8", "9", "8"], [None, None, None, None], ["1", "2", "2", "1"]]
    correct = np.array([[1, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 1]])
    assert ev.majority_vote(answers[0][:3]) == 1
    assert ev.majority_vote(["1", "2", "2", "1"]) == 0  # tie: the earliest answer wins
    assert ev.majority_vote([None, None]) is None
    assert ev.maj_at_k(answers, correct, 1) == pytest.approx(2 / 4)  # prompts 0 and 3
    assert ev.maj_at_k(answers, correct, 3) == pytest.approx(0 / 4 + 0.0)  # "4", "7", none, "2": all wrong
    assert ev.maj_at_k(answers, correct, 4) == pytest.approx(2 / 4)  # "4" wrong, "8" right, none, "1" right


def test_accuracy_by_bucket():
    acc = ev.accuracy_by_bucket(np.array([1, 0, 1, 1, 0]), [1, 1, 2, 2, 3])
    assert acc == {1: (0.5, 2), 2: (1.0, 2), 3: (0.0, 1)}
    acc2 = ev.accuracy_by_bucket(np.array([[1, 0], [1, 1]]), ["easy", "hard"])
    assert acc2 == {"easy": (0.5, 1), "hard": (1.0, 1)}
    with pytest.raises(ValueError):
        ev.accuracy_by_bucket(np.array([1, 0]), [1])
