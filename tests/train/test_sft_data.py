"""The built-in task's SFT pairs, and the share of them that stop one step short (`data.stop_early`)."""

from nsa_jax import tasks
from nsa_jax.train.sft.data import task_pairs


def test_stop_early_cuts_the_last_step_and_answers_the_value_before():
    full = task_pairs("arith", 400, seed=3, difficulty=2)
    mixed = task_pairs("arith", 400, seed=3, difficulty=2, stop_early=0.5)
    problems = tasks.get_task("arith").sample("train", 400, 3, 2)
    assert [p.solution for p in problems] == [r for _, r in full]
    cut = [(p, r) for p, (_, r) in zip(problems, mixed) if r != p.solution]
    assert 160 < len(cut) < 240  # about half
    for problem, response in cut:
        lines = response.split("\n")
        assert lines[:-1] == list(problem.steps[:-1])  # level 2: 3 steps, the first 2 kept
        values = problem.meta["values"]
        assert lines[-1] == f"#### {values['c']}"  # the answer of the step before the last (d's)
        assert tasks.verify_answer(response, problem.answer) == float(values["c"] == values["d"])
    again = task_pairs("arith", 400, seed=3, difficulty=2, stop_early=0.5)
    assert again == mixed  # the cut subset is fixed by the seed
