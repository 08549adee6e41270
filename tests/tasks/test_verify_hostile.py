"""The verifier under hostile input: every call returns within its deadline, scores 0, and has no side effect;
hung and crashing workers are replaced and later calls still work."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from nsa_jax import tasks
from nsa_jax.tasks.pool import CRASH, OK, TIMEOUT

DEADLINE = 3.0
SLACK = 5.0  # generous: kill + join of a worker, and a loaded 2-core CI machine


@pytest.fixture(scope="module")
def warm_pool():
    """Start the shared pool once (fork server + math-verify import) so deadlines below measure the work only."""
    assert tasks.verify_answers(["\\boxed{x^2+1}"], ["1+x^2"], deadline_s=30.0)[0] == 1.0
    return tasks.get_verifier_pool()


def timed_verify(responses, references, deadline=DEADLINE, **kw):
    start = time.monotonic()
    scores = tasks.verify_answers(responses, references, deadline_s=deadline, **kw)
    elapsed = time.monotonic() - start
    assert elapsed < deadline + SLACK, f"took {elapsed:.1f}s"
    assert scores.dtype == np.float32 and scores.shape == (len(responses),)
    return scores


def test_common_cases(warm_pool):
    scores = timed_verify(
        [
            "#### 16",
            "#### 1,000",
            "\\boxed{\\frac{1}{2}}",
            "the answer is $x^2+1$",
            "#### 15",
            "nothing",
            "\\boxed{\\pi}",
        ],
        ["16", "1000", "0.5", "1+x^2", "16", "3", "Natalia... \\boxed{\\pi}"],
    )
    np.testing.assert_array_equal(scores, [1, 1, 1, 1, 0, 0, 1])


def test_huge_string(warm_pool):
    big = "9" * 10_000_000
    scores = timed_verify([big, "#### " + big, "\\boxed{" + big + "}", big + "\n#### 5"], ["5", "5", "5", "6"])
    np.testing.assert_array_equal(scores, [0, 0, 0, 0])


def test_power_tower(warm_pool):
    before = tasks.verifier_stats()
    scores = timed_verify(["#### 9**9**9**9**9", "\\boxed{9^{9^{9^{9^{9}}}}}", "answer: 9**9**9**9**9"], ["5"] * 3)
    np.testing.assert_array_equal(scores, [0, 0, 0])
    assert tasks.verifier_stats().worker - before.worker == 3  # really went to math-verify, and came back


def test_nested_braces(warm_pool):
    deep = "{" * 3000 + "1" + "}" * 3000  # fits in the 10k characters the extractor looks at
    before = tasks.verifier_stats()
    scores = timed_verify(["\\boxed{" + deep + "}", "#### " + deep, "\\boxed{" * 3000], ["1"] * 3)
    np.testing.assert_array_equal(scores, [0, 0, 0])
    assert tasks.verifier_stats().rejected - before.rejected == 2  # refused before any worker saw them


def test_code_injection_has_no_side_effect(warm_pool, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "x"
    payloads = [
        "__import__('os').system('touch x')",
        f"__import__('os').system('touch {target}')",
        f"eval(\"exec('open(\\'{target}\\', \\'w\\')')\")",
    ]
    responses = [f"#### {p}" for p in payloads] + [f"\\boxed{{{p}}}" for p in payloads]
    scores = timed_verify(responses, ["0"] * len(responses))
    np.testing.assert_array_equal(scores, np.zeros(len(responses)))
    # straight into math-verify inside a worker too, past the caller's pre-checks
    results = warm_pool.map(
        "nsa_jax.tasks.math_job:math_equal", [("0", p, 1) for p in payloads], item_deadline_s=DEADLINE, deadline_s=10
    )
    assert all(r != (OK, True) for r in results)
    assert not target.exists() and os.listdir(tmp_path) == []


def test_invalid_utf8_and_surrogates(warm_pool):
    responses = [b"\xff\xfe\n#### \xc3\x28", "\udcff\ud800", b"ok \xff\n#### 7", "x \udcff\n#### 7"]
    scores = timed_verify(responses, ["5", "5", "7", b"7\xff"])
    np.testing.assert_array_equal(scores, [0, 0, 1, 0])


def test_unclosed_boxed(warm_pool):
    scores = timed_verify(["\\boxed{", "\\boxed{12", "so \\boxed{\\frac{1}{2}"], ["12", "12", "0.5"])
    np.testing.assert_array_equal(scores, [0, 0, 0])


def test_hung_worker_is_replaced(warm_pool):
    restarts = warm_pool.stats.restarts
    start = time.monotonic()
    results = warm_pool.map(time.sleep, [(60,)], item_deadline_s=0.5, deadline_s=DEADLINE)
    assert time.monotonic() - start < 0.5 + SLACK
    assert results == [(TIMEOUT, None)]
    assert warm_pool.stats.restarts == restarts + 1
    assert tasks.verify_answers(["\\boxed{2x}"], ["x+x"], deadline_s=10.0)[0] == 1.0


def test_crashing_worker_is_replaced(warm_pool):
    crashes = warm_pool.stats.crashes
    results = warm_pool.map(os._exit, [(3,)], item_deadline_s=DEADLINE, deadline_s=DEADLINE)
    assert results == [(CRASH, None)] and warm_pool.stats.crashes == crashes + 1
    assert tasks.verify_answers(["\\boxed{2x}"], ["x+x"], deadline_s=10.0)[0] == 1.0


def test_batch_deadline_bounds_a_whole_batch(warm_pool):
    start = time.monotonic()
    results = warm_pool.map(time.sleep, [(30,)] * 5, item_deadline_s=30.0, deadline_s=1.0)
    assert time.monotonic() - start < 1.0 + SLACK
    assert results == [(TIMEOUT, None)] * 5
    assert tasks.verify_answers(["\\boxed{2x}"], ["x+x"], deadline_s=10.0)[0] == 1.0


def test_item_timeouts_are_counted_and_score_zero(warm_pool):
    before = tasks.verifier_stats()
    scores = timed_verify(["\\boxed{x^2+1}"] * 2, ["1+x^2"] * 2, item_deadline_s=0.0)
    np.testing.assert_array_equal(scores, [0, 0])
    assert tasks.verifier_stats().timeouts - before.timeouts == 2


def test_lengths_must_match():
    with pytest.raises(ValueError, match="2 responses but 1 references"):
        tasks.verify_answers(["a", "b"], ["a"])


def test_import_is_light_and_the_pool_lazy():
    code = (
        "import sys, multiprocessing as mp\n"
        "import nsa_jax.tasks as t\n"
        "assert not {'sympy', 'math_verify', 'grain', 'tensorflow_datasets', 'jax'} & set(sys.modules)\n"
        "assert t.verify_answers(['#### 3'], ['3'])[0] == 1.0 and not mp.active_children()\n"  # fast path: no pool
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_shutdown_then_a_new_pool_on_demand(warm_pool):
    tasks.shutdown_verifier_pool()
    assert warm_pool.closed
    assert tasks.verify_answers(["\\boxed{2x}"], ["x+x"], deadline_s=30.0)[0] == 1.0
    assert tasks.get_verifier_pool() is not warm_pool
