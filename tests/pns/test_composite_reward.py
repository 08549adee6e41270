"""PNS's composite reward (ALGORITHMS.md section 4, our reading) on hand-made cases, both gates included."""

import math

import jax
import numpy as np
import pytest

from nsa_jax import pns


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_composite_reward_hand_cases():
    format_ok = [False, False, True, True, True, True]
    correct = [False, True, True, True, False, False]
    rm = [5.0, 5.0, 5.0, -3.0, 0.0, 2.0]
    cot = [1.0, 1.0, 1.0, 0.0, 0.5, 1.0]
    got = np.asarray(pns.composite_reward(np.array(format_ok), np.array(correct), np.array(rm), np.array(cot)))
    want = [
        0.0,  # malformed: 0 whatever else holds
        0.0,  # malformed and correct: the format gate comes first
        0.2,  # well formed and correct: exactly w_fmt, whatever the RM and CoT scores
        0.2,
        0.2 + 0.4 + 0.2 * 0.5 + 0.2 * 0.5,  # well formed, wrong: w_fmt + w_inv + w_rm sigmoid(0) + w_cot 0.5
        0.2 + 0.4 + 0.2 * _sigmoid(2.0) + 0.2 * 1.0,
    ]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.dtype == np.float32
    # the plausible wrong answer beats the correct one, which beats the malformed one
    assert got[5] > got[2] > got[0]
    weights = {"w_fmt": 0.1, "w_inv": 0.0, "w_rm": 0.0, "w_cot": 1.0}
    np.testing.assert_allclose(
        pns.composite_reward(np.array([1, 1]), np.array([0, 1]), np.zeros(2), np.array([0.25, 1.0]), **weights),
        [0.35, 0.1],
    )
    # a pure jnp function: it jits
    jitted = jax.jit(pns.composite_reward)(np.array(format_ok), np.array(correct), np.array(rm), np.array(cot))
    np.testing.assert_allclose(jitted, want, rtol=1e-6)


@pytest.mark.parametrize(
    ("response", "style", "ok"),
    [
        ("a = 2\nb = a * 2\n#### 4", "hash", True),
        ("#### 4", "hash", False),  # no reasoning before the answer
        ("a = 2\nb = a * 2", "hash", False),  # no answer line
        ("a = 2\n#### four", "hash", False),  # the answer does not parse
        ("so x = 3, \\boxed{3}", "boxed", True),
        ("so x = 3, \\boxed{3", "boxed", False),
    ],
)
def test_format_gate(response, style, ok):
    assert pns.format_ok(response, style=style) is ok


def test_cot_score_is_the_share_of_correct_steps():
    assert pns.cot_score([True, True, False, False]) == 0.5
    assert pns.cot_score([]) == 0.0
