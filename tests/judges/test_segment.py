"""Step segmentation on hand-made texts: the rule segmenter's steps, the task's own steps, and per-token step ids
that match the text (a step boundary inside a token goes to the token's step)."""

import numpy as np
import pytest

from nsa_jax import models, tasks
from nsa_jax.judges import RuleSegmenter, TaskSegmenter, response_step_ids, token_offsets, token_step_ids
from nsa_jax.models.tiny import TINY_DIR


def _texts(text, spans):
    return [text[s:e] for s, e in spans]


@pytest.mark.parametrize(
    ("split_on", "text", "want"),
    [
        ("lines", "a = 2\nb = a * 2\n\n  c = 5 \n#### 5", ["a = 2", "b = a * 2", "c = 5", "#### 5"]),
        ("blank_lines", "First part.\nstill first\n\n\nSecond part", ["First part.\nstill first", "Second part"]),
        (
            "sentences",
            "We add. Then we multiply! Done?\nNext line",
            ["We add.", "Then we multiply!", "Done?", "Next line"],
        ),
        ("lines", "\n\n", []),
    ],
)
def test_rule_segmenter_steps(split_on, text, want):
    assert _texts(text, RuleSegmenter(split_on).spans(text)) == want


def test_short_steps_join_the_next_and_the_last_joins_the_previous():
    text = "So\nb = 4\nc = 8\n1."
    assert _texts(text, RuleSegmenter("lines", min_chars=3).spans(text)) == ["So\nb = 4", "c = 8\n1."]
    assert _texts("ok", RuleSegmenter("lines", min_chars=5).spans("ok")) == ["ok"]  # nothing to join: one step
    with pytest.raises(ValueError, match="split_on='words'"):
        RuleSegmenter("words")


PIECES = {0: "a = 1", 1: ";\nb", 2: " = 2", 4: "\nc = 3"}


class _Pieces:
    """A tokenizer whose tokens decode to fixed multi-character pieces (id 3 is a special EOS)."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(PIECES.get(i, "" if skip_special_tokens else "<eos>") for i in ids)


def test_a_boundary_inside_a_token_goes_to_the_tokens_step():
    tok = _Pieces()
    ids, spans = response_step_ids(RuleSegmenter("lines"), tok, [0, 1, 2, 4, 3])
    assert _texts("a = 1;\nb = 2\nc = 3", spans) == ["a = 1;", "b = 2", "c = 3"]
    assert token_offsets(tok, [0, 1, 2, 4, 3]) == [(0, 5), (5, 8), (8, 12), (12, 18), (18, 18)]
    # ";\nb" starts in step 0 (its ";"), so it is step 0's, though "b" begins step 1; "\nc = 3" starts on the
    # newline after step 1 and is step 1's; EOS (an empty piece) follows the token before it.
    np.testing.assert_array_equal(ids, [0, 0, 1, 1, 1])
    assert token_step_ids([], [(0, 1)]).tolist() == [-1]


def test_task_steps_give_each_character_token_its_line():
    tokenizer = models.load_tokenizer(TINY_DIR)  # one token per character
    task = tasks.get_task("arith")
    problem = task.sample("test", 1, seed=3, difficulty=2)[0]
    response = problem.solution.replace(problem.steps[0].split("=")[-1].strip(), "99", 1)  # a wrong first step
    token_ids = tokenizer.encode(response, add_special_tokens=False) + [tokenizer.eos_token_id]
    ids, spans = response_step_ids(TaskSegmenter(task), tokenizer, token_ids, problem)
    assert spans == list(task.check_steps(response, problem).spans)
    lines = response.split("\n")
    want = [k for k, line in enumerate(lines) for _ in line + "\n"][: len(response)] + [len(lines) - 1]
    np.testing.assert_array_equal(ids, want)  # newlines belong to the line they end; EOS to the last line
    with pytest.raises(ValueError, match="needs the problem"):
        TaskSegmenter(task).spans(response)
