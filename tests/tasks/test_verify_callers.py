"""The verifier's worker pool does not depend on the caller's `__main__`: an ordinary script without an
`if __name__ == "__main__":` guard, and a script read from stdin, get the symbolic answers right (before, the
workers re-ran the script: every math-verify answer scored 0, and stdin crashed)."""

import subprocess
import sys

import pytest

SCRIPT = r"""
from nsa_jax import tasks
scores = tasks.verify_answers(
    [r"\boxed{x^2+2x+1}", r"\boxed{\sqrt{8}}", r"\boxed{3}"], ["(x+1)^2", r"2\sqrt{2}", "4"], deadline_s=30.0
)
print("SCORES", scores.tolist(), tasks.verifier_stats().worker)
"""
WANT = "SCORES [1.0, 1.0, 0.0] 2"  # both symbolic cases went to math-verify's workers and were accepted


@pytest.mark.parametrize("how", ["script file", "stdin"])
def test_unguarded_caller_gets_symbolic_answers_right(how, tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(SCRIPT, encoding="utf-8")
    command, stdin = ([sys.executable, str(script)], None) if how == "script file" else ([sys.executable, "-"], SCRIPT)
    done = subprocess.run(command, input=stdin, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("SCORES") == 1, done.stdout  # the script ran once, not again in each worker
    assert WANT in done.stdout, done.stdout
