"""The LLM judge's text side on hand-made cases: the prompt carries the problem, the reference, the numbered steps
and (full style) the paper's rules; verdicts parse only when they are exactly one 0/1 per step, anything else is
malformed; the fine-tuning pairs are the compact prompt and the verdict of the true labels."""

import pytest

from nsa_jax.judges.llm import RULES, judge_prompt, parse_verdicts, verdict_examples, verdict_text


def test_prompt_styles():
    full = judge_prompt("a = 2; b = a * 3; what is b?", ["b = 2 * 3 = 6", "#### 6"], "6")
    assert "Problem: a = 2; b = a * 3; what is b?" in full and "Reference answer: 6" in full
    assert "1) b = 2 * 3 = 6\n2) #### 6" in full and RULES in full
    assert "builds on an earlier error" in RULES and "corrects the earlier error" in RULES
    compact = judge_prompt("a = 2; what is a?", ["#### 2 "], "2", style="compact")
    assert compact == "a = 2; what is a?\nref 2\n1) #### 2\nverdict:"
    with pytest.raises(ValueError, match="style"):
        judge_prompt("p", ["s"], "r", style="long")


@pytest.mark.parametrize(
    ("text", "steps", "want"),
    [
        ("[1, 0, 1]", 3, [True, False, True]),
        ("The scores are [1,1] because ...", 2, [True, True]),
        ("[true, False]", 2, [True, False]),
        ('["1", "0"]', 2, [True, False]),
        ("[1, 0]", 3, None),  # too few
        ("[1, 0, 1, 1]", 3, None),  # too many
        ("[1, 2]", 2, None),  # not a verdict
        ("1, 0", 2, None),  # no list
        ("[]", 1, None),
        ("[[1, 0]]", 2, [True, False]),  # the innermost list
        ("[0.5, 1]", 2, None),
        ("", 1, None),
    ],
)
def test_parse_verdicts(text, steps, want):
    assert parse_verdicts(text, steps) == want


def test_verdict_examples_round_trip():
    pairs = verdict_examples(["q1", "q2"], [["s1", "s2"], ["t1"]], ["1", "2"], [[True, False], [False]])
    assert pairs[0] == ("q1\nref 1\n1) s1\n2) s2\nverdict:", "[1, 0]")
    assert parse_verdicts(pairs[1][1], 1) == [False]
    assert verdict_text([]) == "[]"
