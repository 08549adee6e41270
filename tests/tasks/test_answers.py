"""Final-answer extraction, normalisation, the fast path and the format reward (no workers involved)."""

import pytest

from nsa_jax import tasks
from nsa_jax.tasks.answers import as_number, last_boxed, looks_hostile
from nsa_jax.tasks.verify import fast_decision, reference_answer


@pytest.mark.parametrize(
    "text, expected",
    [
        ("b = 1 + 2 = 3\n#### 3", "3"),
        ("#### 1\nwait\n####  42 ", "42"),
        ("so \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("\\boxed{1} then \\boxed{\\sqrt{\\frac{a}{b}}}", "\\sqrt{\\frac{a}{b}}"),
        ("\\boxed{2} and an unclosed \\boxed{3", "2"),
        ("an unclosed \\boxed{3", None),
        ("The answer is 12.", "12"),
        ("answer: $x+1$", "x+1"),
        ("The final answer is \\boxed{7}", "7"),
        ("nothing to see", None),
        (b"bytes \xff\xfe\n#### 5", "5"),
        ("surrogate \udcff\n#### 6", "6"),
    ],
)
def test_extract_answer(text, expected):
    assert tasks.extract_answer(text) == expected


def test_extract_answer_looks_only_at_the_tail():
    assert tasks.extract_answer("#### 1\n" + "x" * 20_000) is None
    assert tasks.extract_answer("x" * 20_000 + "\n#### 2") == "2"


def test_last_boxed_deep_nesting_is_linear():
    deep = "\\boxed{" + "{" * 4000 + "1" + "}" * 4000 + "}"
    assert last_boxed(deep) == "{" * 4000 + "1" + "}" * 4000
    assert looks_hostile(last_boxed(deep))


def test_numbers_and_fast_path():
    assert as_number("1,234") == 1234 and as_number("-0.50") == as_number("\\frac{-1}{2}") == as_number("-1/2")
    assert as_number("x+1") is None and as_number("9" * 100) is None
    assert fast_decision("16", "16.0") == 1.0
    assert fast_decision("$ 1,000 $", "1000") == 1.0
    assert fast_decision("17", "16") == 0.0
    assert fast_decision("x^2+1", "1+x^2") is None  # needs math-verify
    assert reference_answer("Natalia sold 48.\n#### 72") == "72"
    assert reference_answer("so $\\boxed{\\pi}$") == "\\pi"
    assert reference_answer(" 5 ") == "5"


def test_format_reward():
    assert tasks.format_reward("b = 1\n#### 3\n") == 1.0
    assert tasks.format_reward("#### 3\nmore text") == 0.0
    assert tasks.format_reward("#### ") == 0.0
    assert tasks.format_reward("") == 0.0
    assert tasks.format_reward("\\boxed{3}", style="boxed") == 1.0
    assert tasks.format_reward("\\boxed{3", style="boxed") == 0.0
    assert tasks.format_reward("the answer is 3", style="any") == 1.0
    with pytest.raises(ValueError):
        tasks.format_reward("x", style="nope")
