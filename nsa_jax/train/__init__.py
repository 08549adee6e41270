"""Everything with an optimiser: thin trainers over one core.

`core/` holds the state, the pure jitted step, the engine, the one resumable loop, checkpoints, metrics, optimiser,
scoring and policy load / export; `sft/`, `rl/`, `offline/` and `preference/` (DPO, the reward model, the PRM) are the trainers built on it,
`demo.py` the main job (every method from one SFT start, and the report). `TRAINERS` maps `config.trainer` to a function
`(config) -> result`; `nsa_jax.main` dispatches on it.
"""

from collections.abc import Callable
from typing import Any

import ml_collections

from nsa_jax.train import demo, offline, rl, sft
from nsa_jax.train.core import (
    Engine,
    NonFiniteError,
    Round,
    TrainState,
    init_state,
    jit_train_step,
    make_train_step,
    run,
    split_model,
    state_shardings,
)
from nsa_jax.train.pns import generator as pns_generator
from nsa_jax.train.pns import pairs as pns_pairs
from nsa_jax.train.preference import dpo, prm, reward_model
from nsa_jax.train.sft import DataError
from nsa_jax.train.sft import judge as llm_judge

TRAINERS: dict[str, Callable[[ml_collections.ConfigDict], Any]] = {
    "sft": sft.train,
    "rl": rl.train,
    "offline": offline.train,
    "dpo": dpo.train,
    "reward_model": reward_model.train,
    "prm": prm.train,
    "llm_judge": llm_judge.train,
    "pns_generator": pns_generator.train,
    "pns_pairs": pns_pairs.train,
    "demo": demo.train,
}


def get_trainer(name: str) -> Callable[[ml_collections.ConfigDict], Any]:
    if name not in TRAINERS:
        raise ValueError(f"config.trainer={name!r} is not one of {sorted(TRAINERS)}")
    return TRAINERS[name]


__all__ = [
    "TRAINERS",
    "DataError",
    "Engine",
    "NonFiniteError",
    "Round",
    "TrainState",
    "get_trainer",
    "init_state",
    "jit_train_step",
    "make_train_step",
    "run",
    "split_model",
    "state_shardings",
]
