"""Judge combination and the judge report on hand-made cases: consensus never mines a step either judge rejects,
the oracle has precision 1, and precision / recall / mined tokens are counted by hand."""

import json

import numpy as np
import pytest

from nsa_jax.judges import combine, judge_metrics, judge_report, step_token_counts

LLM = [[True, True, False], [True, False]]
PRM = [[True, False, False], [True, True]]
TRUTH = [[True, False, False], [False, True]]
TOKENS = [[5, 3, 4], [2, 6]]


def test_modes_combine_the_judges():
    assert combine("consensus", llm=LLM, prm=PRM) == [[True, False, False], [True, False]]
    assert combine("or", llm=LLM, prm=PRM) == [[True, True, False], [True, True]]
    assert combine("llm", llm=LLM, prm=PRM) == LLM and combine("prm", llm=LLM, prm=PRM) == PRM
    assert combine("oracle", llm=LLM, prm=PRM, oracle=TRUTH) == TRUTH
    with pytest.raises(ValueError, match="needs the ground-truth"):
        combine("oracle", llm=LLM, prm=PRM)
    with pytest.raises(ValueError, match="response 1: the LLM judge labelled 2 steps, the PRM judge 1"):
        combine("consensus", llm=LLM, prm=[[True, False, False], [True]])
    with pytest.raises(ValueError, match="'vote'"):
        combine("vote", llm=LLM, prm=PRM)


def test_consensus_never_mines_a_step_either_judge_rejects():
    rng = np.random.default_rng(0)
    llm = (rng.random((50, 6)) < 0.6).tolist()
    prm = (rng.random((50, 6)) < 0.6).tolist()
    both = combine("consensus", llm=llm, prm=prm)
    for a, b, c in zip(llm, prm, both):
        assert all(not m or (x and y) for x, y, m in zip(a, b, c))


def test_report_counts_by_hand(tmp_path):
    labels = {mode: combine(mode, llm=LLM, prm=PRM, oracle=TRUTH) for mode in ("consensus", "or", "oracle")}
    report = judge_report(labels, TRUTH, TOKENS, str(tmp_path / "judge_report.json"))
    # consensus mines (0,0) right and (1,0) wrong: precision 1/2; true steps (0,0), (1,1): recall 1/2; 5 + 2 tokens
    # ... and agrees with the truth on 3 of the 5 steps, as or does.
    assert report["consensus"] == {
        "precision": 0.5,
        "recall": 0.5,
        "mined_tokens": 7.0,
        "mined_steps": 2.0,
        "accuracy": 0.6,
    }
    # or mines (0,0) (0,1) (1,0) (1,1): 2 of 4 right, both true steps found, 5 + 3 + 2 + 6 tokens
    assert report["or"] == {"precision": 0.5, "recall": 1.0, "mined_tokens": 16.0, "mined_steps": 4.0, "accuracy": 0.6}
    assert report["oracle"]["precision"] == 1.0 and report["oracle"]["recall"] == 1.0
    assert json.loads((tmp_path / "judge_report.json").read_text(encoding="utf-8")) == report
    assert judge_metrics([[False]], [[False]], [[3]]) == {
        "precision": 1.0,
        "recall": 1.0,
        "mined_tokens": 0.0,
        "mined_steps": 0.0,
        "accuracy": 1.0,
    }
    assert step_token_counts(np.array([-1, 0, 0, 1, 1, 1, 2, -1]), 3) == [2, 3, 1]
