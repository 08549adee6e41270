"""Command line: `python -m nsa_jax.main --config=configs/X.py[:arg] [--config.key=value ...]` (or `nsa-jax ...`).

The config file is an ml_collections `get_config(arg)`; it is locked, so an unknown `--config.key` fails while the
flags are parsed, before JAX starts or anything is written. `config.trainer` picks the trainer.
"""

from __future__ import annotations

import os
import sys

from absl import app, logging
from ml_collections import config_flags

from nsa_jax import compile_cache, cpu_devices, hugepages

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "experiment config file (configs/*.py[:arg])", lock_config=True
)


def _config_root_on_path(argv: list[str]) -> None:
    """Lets config files `from configs import base`: the folder holding their `configs/` folder goes on sys.path."""
    for i, arg in enumerate(argv):
        path = arg.split("=", 1)[1] if arg.startswith("--config=") else None
        if arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        if path:
            sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(path.split(":", 1)[0]))))


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    logging.set_verbosity(logging.WARNING)  # orbax logs every save step at INFO; the progress bar says enough
    from nsa_jax import models, parallel, train  # after flag parsing: a bad flag costs no JAX start-up

    d = config.distributed
    parallel.initialize(
        coordinator_address=d.coordinator or None,
        num_processes=d.num_processes or None,
        process_id=d.process_id if d.process_id >= 0 else None,
    )
    compile_cache.configure()
    try:
        train.get_trainer(config.trainer)(config)
    except (FileNotFoundError, train.DataError, train.NonFiniteError, models.CheckpointError) as e:
        sys.exit(f"nsa_jax: error: {e}")


def run() -> None:
    """Console script `nsa-jax`. Starts again once with large host buffers on huge pages (`nsa_jax.hugepages`), and
    splits XLA's CPU platform into one device per core (`nsa_jax.cpu_devices`); `main` keeps compiled programs on
    disk between runs (`nsa_jax.compile_cache`)."""
    hugepages.reexec()
    cpu_devices.configure()
    _config_root_on_path(sys.argv)
    app.run(main)


if __name__ == "__main__":
    run()
