"""Metrics to JSONL (always) and TensorBoard event files, written by process 0 only.

JSONL is the record a later script reads (one object per logged step); TensorBoard is for watching a run. Other
processes get a writer that does nothing, so trainers call it unconditionally.
"""

from __future__ import annotations

import json
import os
from typing import Any

from nsa_jax import parallel


class MetricsWriter:
    """`write(step, {name: float})` appends to `<dir>/metrics.jsonl` and the TensorBoard log in `<dir>/tb`."""

    def __init__(self, directory: str, *, tensorboard: bool = True, history: list[dict[str, float]] = ()):
        self.enabled = parallel.is_main_process()
        self._jsonl = None
        self._tb = None
        if not self.enabled:
            return
        os.makedirs(directory, exist_ok=True)
        # A resumed run starts the file again from the checkpoint's history: records written after that checkpoint
        # (which the resumed run replays) never appear twice.
        self._jsonl = open(os.path.join(directory, "metrics.jsonl"), "w", encoding="utf-8")  # noqa: SIM115
        for record in history:
            self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(os.path.join(directory, "tb"))

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        values = {k: float(v) for k, v in metrics.items()}
        self._jsonl.write(json.dumps({"step": step, **values}) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for name, value in values.items():
                self._tb.add_scalar(name, value, step)

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tb is not None:
            self._tb.close()
