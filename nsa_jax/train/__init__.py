"""Thin orchestration: trainers by name, the shared loop, the pure train step, checkpoints and metrics.

`TRAINERS` maps `config.trainer` to a function `(config) -> trained model`; `nsa_jax.main` dispatches on it.
"""

from collections.abc import Callable
from typing import Any

import ml_collections

from nsa_jax.train import rl, rl_demo, sft
from nsa_jax.train.data import DataError
from nsa_jax.train.loop import NonFiniteError, fit
from nsa_jax.train.state import TrainState, init_state, split_model, state_shardings
from nsa_jax.train.step import jit_train_step, make_train_step

TRAINERS: dict[str, Callable[[ml_collections.ConfigDict], Any]] = {
    "sft": sft.train,
    "rl": rl.train,
    "rl_demo": rl_demo.train,
}


def get_trainer(name: str) -> Callable[[ml_collections.ConfigDict], Any]:
    if name not in TRAINERS:
        raise ValueError(f"config.trainer={name!r} is not one of {sorted(TRAINERS)}")
    return TRAINERS[name]


__all__ = [
    "TRAINERS",
    "DataError",
    "NonFiniteError",
    "TrainState",
    "fit",
    "get_trainer",
    "init_state",
    "jit_train_step",
    "make_train_step",
    "split_model",
    "state_shardings",
]
