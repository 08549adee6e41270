"""The trainer core every trainer builds on: state, the pure jitted step (group-preserving micro-batches), the
engine that holds a model's state and step, the one resumable loop, checkpoints, metrics, optimiser, scoring
(log-probs of a batch under any parameters), and policy load / export."""

from nsa_jax.train.core.checkpoint import Checkpointer
from nsa_jax.train.core.engine import Engine, Round
from nsa_jax.train.core.epochs import GroupEpochs, shared_prompt_width, shares_prompt
from nsa_jax.train.core.loop import NonFiniteError, Source, run, run_dir
from nsa_jax.train.core.metrics import MetricsWriter
from nsa_jax.train.core.optim import learning_rate_schedule, make_optimizer
from nsa_jax.train.core.policy import dtype_of, export_policy, load_policy, model_dir, param_placement, set_params
from nsa_jax.train.core.scoring import make_scorer, score_tokens, sequence_logprobs
from nsa_jax.train.core.state import TrainState, init_state, split_model, state_shardings
from nsa_jax.train.core.step import (
    LossFn,
    device_batch,
    jit_train_step,
    make_train_step,
    micro_batches,
    split_micro_batches,
)

__all__ = [
    "Checkpointer",
    "Engine",
    "GroupEpochs",
    "LossFn",
    "MetricsWriter",
    "NonFiniteError",
    "Round",
    "Source",
    "TrainState",
    "device_batch",
    "dtype_of",
    "export_policy",
    "init_state",
    "jit_train_step",
    "learning_rate_schedule",
    "load_policy",
    "make_optimizer",
    "make_scorer",
    "make_train_step",
    "micro_batches",
    "model_dir",
    "param_placement",
    "run",
    "run_dir",
    "score_tokens",
    "sequence_logprobs",
    "set_params",
    "shared_prompt_width",
    "shares_prompt",
    "split_micro_batches",
    "split_model",
    "state_shardings",
]
