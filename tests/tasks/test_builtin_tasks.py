"""Built-in generated tasks: determinism, disjoint splits, canonical solutions, the per-step checker."""

import pytest

from nsa_jax import tasks

BUILTIN = ["arith", "branch"]


@pytest.mark.parametrize("name", BUILTIN)
def test_registry_and_protocol(name):
    task = tasks.get_task(name)
    assert name in tasks.task_names()
    assert isinstance(task, tasks.Task)
    with pytest.raises(KeyError, match="unknown task"):
        tasks.get_task("no_such_task")


@pytest.mark.parametrize("name", BUILTIN)
def test_sampling_is_deterministic_and_seeded(name):
    task = tasks.get_task(name)
    a = task.sample("train", 50, seed=3, difficulty=2)
    b = task.sample("train", 50, seed=3, difficulty=2)
    c = task.sample("train", 50, seed=4, difficulty=2)
    assert a == b
    assert [p.prompt for p in a] != [p.prompt for p in c]
    assert all(p.difficulty == 2 and p.task == name for p in a)
    mixed = task.sample("train", 60, seed=0)
    assert {p.difficulty for p in mixed} == set(task.levels)
    with pytest.raises(ValueError, match="difficulty"):
        task.sample("train", 1, difficulty=99)
    with pytest.raises(ValueError, match="split"):
        task.sample("validation", 1)


@pytest.mark.parametrize("name", BUILTIN)
def test_splits_are_disjoint(name):
    task = tasks.get_task(name)
    train = {p.prompt for p in task.sample("train", 3000, seed=0, difficulty=1)}
    test = {p.prompt for p in task.sample("test", 300, seed=0, difficulty=1)}
    assert len(test) > 100 and len(train) > 1000
    assert not train & test
    assert all(tasks.split_of(p, task.test_fraction) == "test" for p in test)


@pytest.mark.parametrize("name", BUILTIN)
def test_canonical_solutions_verify_and_all_steps_correct(name):
    task = tasks.get_task(name)
    for level in task.levels:
        for p in task.sample("test", 40, seed=1, difficulty=level):
            assert task.verify(p.solution, p) == 1.0
            check = task.check_steps(p.solution, p)
            assert check.correct == (True,) * (len(p.steps) + 1)
            assert check.first_error is None and check.all_correct
            assert [p.solution[s:e] for s, e in check.spans] == [*p.steps, f"#### {p.answer}"]
            assert p.solution.endswith(f"\n#### {p.answer}")
            assert len(p.steps) == level + 1


@pytest.mark.parametrize("name", BUILTIN)
def test_easiest_level_is_short_printable_ascii(name):
    for p in tasks.get_task(name).sample("train", 500, seed=0, difficulty=1):
        text = p.prompt + "\n" + p.solution
        assert len(text) <= 120
        assert all(32 <= ord(ch) < 127 or ch == "\n" for ch in text)
        assert 0 <= int(p.answer) <= 99


def make_arith():
    return tasks.Problem(
        prompt="a = 7; b = a * 3; c = b - 5; d = c + 2; what is d?",
        answer="18",
        difficulty=1,
        solution="b = 7 * 3 = 21\nc = 21 - 5 = 16\nd = 16 + 2 = 18\n#### 18",
        steps=("b = 7 * 3 = 21", "c = 21 - 5 = 16", "d = 16 + 2 = 18"),
        task="arith",
        meta={
            "values": {"a": 7, "b": 21, "c": 16, "d": 18},
            "defs": {"b": ["a", "*", 3], "c": ["b", "-", 5], "d": ["c", "+", 2]},
        },
    )


@pytest.mark.parametrize(
    "response, expected",
    [
        ("b = 7 * 3 = 21\nc = 21 - 5 = 16\nd = 16 + 2 = 18\n#### 18", [True, True, True, True]),
        # first error, then two steps that build on it, then a wrong final answer
        ("b = 7 * 3 = 24\nc = 24 - 5 = 19\nd = 19 + 2 = 21\n#### 21", [False, False, False, False]),
        # an error in the middle only: the steps before it stay right
        ("b = 7 * 3 = 21\nc = 21 - 5 = 15\nd = 15 + 2 = 17\n#### 17", [True, False, False, False]),
        # self-correction: recomputing c from the true values is right again, and so is everything after
        ("b = 7 * 3 = 21\nc = 21 - 5 = 15\nc = 21 - 5 = 16\nd = 16 + 2 = 18\n#### 18", [True, False, True, True, True]),
        # right value from wrong operands is wrong; names and commuted operands are accepted
        ("b = 7 * 3 = 21\nc = 22 - 6 = 16\nd = 2 + c = 18\n#### 18", [True, False, True, True]),
        # wrong operation with a coincidentally right result, unparseable chatter, restatement of a given
        ("a = 7\nb = 7 * 3 = 21\nhmm let me think\nc = 11 + 5 = 16\n#### 18", [True, True, False, False, True]),
    ],
)
def test_arith_step_checker(response, expected):
    task, p = tasks.get_task("arith"), make_arith()
    check = task.check_steps(response, p)
    assert list(check.correct) == expected
    assert check.first_error == (expected.index(False) if False in expected else None)
    assert [response[s:e] for s, e in check.spans] == response.split("\n")


def test_branch_step_checker():
    task = tasks.get_task("branch")
    p = tasks.Problem(
        prompt="n = 7; 3 times: if n > 5 then n -= 2 else n *= 3; what is n?",
        answer="13",
        difficulty=2,
        solution="7 > 5: n = 7 - 2 = 5\n5 <= 5: n = 5 * 3 = 15\n15 > 5: n = 15 - 2 = 13\n#### 13",
        steps=("7 > 5: n = 7 - 2 = 5", "5 <= 5: n = 5 * 3 = 15", "15 > 5: n = 15 - 2 = 13"),
        task="branch",
        meta={"cond": [">", 5], "if_true": ["-", 2], "if_false": ["*", 3], "states": [7, 5, 15, 13]},
    )
    cases = {
        p.solution: [True, True, True, True],
        # wrong branch choice, then a step that builds on its result
        "7 > 5: n = 7 - 2 = 5\n5 > 5: n = 5 - 2 = 3\n3 <= 5: n = 3 * 3 = 9\n#### 9": [True, False, False, False],
        # arithmetic slip, then self-correction from the true value
        "7 > 5: n = 7 - 2 = 4\n7 > 5: n = 7 - 2 = 5\n5 <= 5: n = 5 * 3 = 15\n15 > 5: n = 15 - 2 = 13\n#### 13": [
            False,
            True,
            True,
            True,
            True,
        ],
        # right result with a wrongly stated threshold; applying the rule past the last step
        "7 > 4: n = 7 - 2 = 5\n13 > 5: n = 13 - 2 = 11\n#### 11": [False, False, False],
    }
    for response, expected in cases.items():
        assert list(task.check_steps(response, p).correct) == expected, response


def test_branch_parity_rule_and_both_branches():
    task = tasks.get_task("branch")
    problems = task.sample("train", 300, seed=2, difficulty=3)
    parity = [p for p in problems if p.meta["cond"][0] == "even"]
    assert parity and len(parity) < len(problems)
    for p in problems:
        claims = {">" in s.split(":")[0] or "even" in s.split(":")[0] for s in p.steps}
        assert claims == {True, False}  # both branches taken
    p = parity[0]
    flipped = p.steps[0].replace("even", "TMP").replace("odd", "even").replace("TMP", "odd")
    assert task.check_steps(flipped, p).correct == (False,)


def test_verify_built_in_answers():
    task, p = tasks.get_task("arith"), make_arith()
    assert task.verify("blah\n#### 18", p) == 1.0
    assert task.verify("#### 18.0", p) == 1.0
    assert task.verify("#### 17", p) == 0.0
    assert task.verify("no answer here", p) == 0.0
