"""Intervals for comparisons: the paired bootstrap against scipy's, the t interval against a printed t table."""

import numpy as np
import pytest
import scipy.stats

from nsa_jax.eval import paired_bootstrap, t_interval
from nsa_jax.train.rl import heldout


def test_paired_bootstrap_matches_scipy_percentile_bootstrap():
    rng = np.random.default_rng(0)
    before = rng.binomial(8, 0.3, size=300) / 8
    after = np.clip(before + rng.normal(0.05, 0.2, size=300), 0, 1)
    ours = paired_bootstrap(before, after, num_resamples=20_000, seed=1)
    ref = scipy.stats.bootstrap(
        (after - before,), np.mean, confidence_level=0.95, n_resamples=20_000, method="percentile", random_state=2
    ).confidence_interval
    assert ours.mean == pytest.approx(float(np.mean(after - before)))
    assert ours.low == pytest.approx(ref.low, abs=2e-3) and ours.high == pytest.approx(ref.high, abs=2e-3)
    # About 1.96 standard errors each side of the mean for a sample this large.
    se = np.std(after - before, ddof=1) / np.sqrt(300)
    assert ours.high - ours.low == pytest.approx(2 * 1.96 * se, rel=0.05)


def test_paired_bootstrap_sees_pairing():
    """A shift shared by every problem is certain however noisy the problems are; unpaired it would not be."""
    before = np.random.default_rng(0).uniform(0, 1, size=50)
    gain = paired_bootstrap(before, before + 0.01)
    assert gain.low == pytest.approx(0.01) and gain.high == pytest.approx(0.01)


def test_paired_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="equal-length"):
        paired_bootstrap([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap([0.1], [0.2], confidence=1.0)


def test_t_interval_uses_students_t():
    # t(0.975, 2) = 4.303 and t(0.975, 9) = 2.262 (printed tables).
    gain = t_interval([0.1, 0.2, 0.3])
    assert gain.mean == pytest.approx(0.2)
    assert gain.high - gain.mean == pytest.approx(4.303 * 0.1 / np.sqrt(3), rel=1e-3)
    ten = np.arange(10.0)
    assert t_interval(ten).high - 4.5 == pytest.approx(2.262 * np.std(ten, ddof=1) / np.sqrt(10), rel=1e-3)
    assert t_interval([0.4]) == (0.4, 0.4, 0.4)


def test_paired_gains_of_two_saved_evaluations(tmp_path):
    """Per level and overall, pass@1 and pass@k gains from two saved `sample_correct` matrices; pass@k per problem
    by the unbiased estimator written out here from its formula."""
    rng = np.random.default_rng(3)
    before = rng.uniform(size=(40, 4)) < 0.3
    after = rng.uniform(size=(40, 4)) < 0.6
    levels = [1] * 20 + [2] * 20
    heldout.save_correct(str(tmp_path / "a.npz"), before, levels)
    heldout.save_correct(str(tmp_path / "b.npz"), after, levels)
    gains = heldout.paired_gains(str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), ks=(1, 4))
    assert gains["gain/pass@1"] == pytest.approx(after.mean() - before.mean())
    assert gains["gain/pass@1/d2"] == pytest.approx(after[20:].mean() - before[20:].mean())
    any4 = lambda c: c.any(axis=1).mean()
    assert gains["gain/pass@4/d1"] == pytest.approx(any4(after[:20]) - any4(before[:20]))
    assert gains["gain/pass@1/low"] < gains["gain/pass@1"] < gains["gain/pass@1/high"]
    heldout.save_correct(str(tmp_path / "c.npz"), after[:30], levels[:30])
    with pytest.raises(ValueError, match="different evaluations"):
        heldout.paired_gains(str(tmp_path / "a.npz"), str(tmp_path / "c.npz"), ks=(1,))


def test_a_saved_evaluation_is_read_back_only_for_its_own_fingerprint(tmp_path):
    """`eval.start_from` reads a start evaluation instead of sampling it again, only if it is the same evaluation."""
    correct, levels = np.random.default_rng(0).random((6, 4)) < 0.5, [1, 1, 1, 2, 2, 2]
    heldout.save_correct(str(tmp_path / "s.npz"), correct, levels, "abc")
    got, got_levels = heldout.load_correct(str(tmp_path / "s.npz"), "abc")
    np.testing.assert_array_equal(got, correct)
    np.testing.assert_array_equal(got_levels, levels)
    with pytest.raises(ValueError, match="another held-out evaluation"):
        heldout.load_correct(str(tmp_path / "s.npz"), "abd")
