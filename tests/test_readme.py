"""The README's Python example runs as written, in a fresh process and a temporary directory."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path):
    block = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert block, "README.md has no python example"
    script = tmp_path / "example.py"
    script.write_text(block.group(1) + "\nassert np.isfinite(float(loss)) and rewards.shape == (4 * G,)\n")
    result = subprocess.run(
        [sys.executable, str(script)], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "runs" / "export" / "model.safetensors").exists()
