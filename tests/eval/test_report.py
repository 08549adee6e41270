"""The comparison report on synthetic held-out evaluations: its figures against numpy written from the formulas
(unbiased pass@k, per-level means, gains, paired differences, t intervals over seeds), and its files."""

from math import comb

import numpy as np
import pytest
import scipy.stats

from nsa_jax.eval import report

LEVELS = np.array([1] * 6 + [2] * 4)


def _save(path, correct):
    np.savez(path, correct=correct, levels=LEVELS)
    return str(path)


def _pass_at_k(row, k):
    n, c = len(row), int(row.sum())
    return 1.0 - comb(n - c, k) / comb(n, k)


@pytest.fixture
def runs(tmp_path):
    """Two methods x two seeds, each with a start and an end evaluation of 10 problems x 4 samples."""
    rng = np.random.default_rng(0)
    start = rng.random((10, 4)) < 0.3
    out, ends = [], {}
    for method, p in (("a", 0.6), ("b", 0.4)):
        for seed in range(2):
            end = rng.random((10, 4)) < p
            ends[method, seed] = end
            evals = (
                report.Evaluation(0, _save(tmp_path / f"start_{method}{seed}.npz", start)),
                report.Evaluation(64, _save(tmp_path / f"{method}{seed}.npz", end)),
            )
            out.append(report.MethodRun(method, "online", seed, evals))
    return out, start, ends


def test_summary_is_the_mean_over_seeds_of_unbiased_pass_at_k_by_level(runs):
    out, start, ends = runs
    rows = report.summary(out, (1, 2, 4))
    assert list(rows) == [report.START, "a", "b"]
    for k in (1, 2, 4):
        want = np.mean([np.mean([_pass_at_k(r, k) for r in ends["a", s][LEVELS == 2]]) for s in range(2)])
        assert rows["a"][f"pass@{k}/d2"] == pytest.approx(want)
        assert rows[report.START][f"pass@{k}"] == pytest.approx(np.mean([_pass_at_k(r, k) for r in start]))
    gains = [ends["b", s].mean() - start.mean() for s in range(2)]
    half = scipy.stats.t.ppf(0.975, 1) * np.std(gains, ddof=1) / np.sqrt(2)
    assert rows["b"]["gain/pass@1"] == pytest.approx(np.mean(gains))
    assert rows["b"]["gain/pass@1/low"] == pytest.approx(np.mean(gains) - half)
    assert rows["b"]["responses"] == 64


def test_difference_is_paired_over_problems_for_one_seed_and_over_seeds_for_several(runs):
    out, _, ends = runs
    grouped = report.by_method(out)
    one = report.difference(grouped["a"][:1], grouped["b"][:1], 1)
    assert one.mean == pytest.approx(ends["a", 0].mean() - ends["b", 0].mean())
    assert one.low < one.mean < one.high
    several = report.difference(grouped["a"], grouped["b"], 1)
    diffs = [ends["a", s].mean() - ends["b", s].mean() for s in range(2)]
    assert several.mean == pytest.approx(np.mean(diffs))
    with pytest.raises(ValueError, match="seeds"):
        report.difference(grouped["a"], grouped["b"][:1], 1)


def test_write_makes_the_markdown_json_and_plots(runs, tmp_path):
    out, _, _ = runs
    judge = {"oracle": {"precision": 1.0, "recall": 1.0, "mined_tokens": 10.0}, "counts": {}}
    judge["prm"] = {"precision": 0.5, "recall": 0.25, "mined_tokens": 4.0}
    text = report.write(str(tmp_path / "r"), out, (1, 2, 4), comparisons=[("a", "b")], judge_reports=[judge])
    assert (tmp_path / "r" / "report.md").read_text(encoding="utf-8") == text
    assert "| a - b |" in text and "| prm | 0.500 | 0.250 | 4 |" in text
    assert "t interval over 2 seeds" in text
    for name in ("pass1_vs_responses.png", "pass_at_k.png", "judges.png"):
        assert (tmp_path / "r" / name).read_bytes()[:4] == b"\x89PNG"
