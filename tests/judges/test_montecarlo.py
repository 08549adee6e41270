"""Monte-Carlo step labels against the arith task's own step checker, with a scripted completer that continues a
prefix correctly from its last written value (so a completion reaches the answer exactly when that value is the
variable's true one: the chain's operations are injective). On canonical solutions, wrong last steps, and a wrong
first step that the next step recomputes from the true value, the labels equal the checker's."""

import re

from nsa_jax import judges, tasks
from nsa_jax.rollouts import verifier_reward
from nsa_jax.tasks.generated import apply_op
from nsa_jax.train.sft import format_prompt
from tests.rl.rl_helpers import wrong_last_step

TASK = tasks.get_task("arith")
PROBLEMS = TASK.sample("train", 6, seed=21, difficulty=2)
_LINE = re.compile(r"([a-z]) = .* = (-?\d+)$")


def _problem_of(prompt: str) -> tasks.Problem:
    return next(p for p in PROBLEMS if prompt.startswith(format_prompt(p.prompt)))


def scripted_complete(prompts, n):
    """The rest of the chain computed from the prefix's last value, then the answer; `n` identical copies."""
    out = []
    for prompt in prompts:
        p = _problem_of(prompt)
        var, value = _LINE.search(prompt.rstrip("\n").splitlines()[-1]).groups()
        value, defs, names = int(value), p.meta["defs"], list(p.meta["defs"])
        lines = []
        for later in names[names.index(var) + 1 :]:
            _, op, right = defs[later]
            operand = p.meta["values"][right] if isinstance(right, str) else right
            new = apply_op(value, op, operand)
            lines.append(f"{later} = {value} {op} {operand} = {new}")
            value = new
        out.append(["\n".join([*lines, f"#### {value}"])] * n)
    return out


def recomputed(p: tasks.Problem) -> str:
    """The first step's result off by one, every later step computed from the true values (right again)."""
    first, *rest = p.solution.split("\n")
    lhs, value = first.rsplit("=", 1)
    return "\n".join([f"{lhs}= {int(value) + 1}", *rest])


def test_mc_labels_equal_the_step_checker():
    problems, responses = [], []
    for p in PROBLEMS:
        for text in (p.solution, wrong_last_step(p), recomputed(p)):
            problems.append(p)
            responses.append(text)
    segmenter = judges.TaskSegmenter(TASK)
    spans = [segmenter.spans(r, p) for p, r in zip(problems, responses)]
    labels = judges.mc_step_labels(
        problems,
        responses,
        spans,
        complete=scripted_complete,
        verify=verifier_reward(TASK),
        samples=3,
        prompt_fn=format_prompt,
    )
    truth = [list(TASK.check_steps(r, p).correct) for p, r in zip(problems, responses)]
    assert labels == truth
    assert len({tuple(t) for t in truth}) == 3  # the three kinds of response have three label patterns


def test_a_completion_that_never_answers_marks_every_step_but_the_last_wrong():
    p = PROBLEMS[0]
    spans = [judges.TaskSegmenter(TASK).spans(p.solution, p)]
    labels = judges.mc_step_labels(
        [p],
        [p.solution],
        spans,
        complete=lambda prompts, n: [["no answer"] * n for _ in prompts],
        verify=verifier_reward(TASK),
        samples=2,
        prompt_fn=format_prompt,
    )
    assert labels == [[False] * (len(spans[0]) - 1) + [True]]
