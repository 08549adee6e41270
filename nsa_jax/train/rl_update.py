"""The optimisation side of online RL: PPO epochs of mini-batch steps over one rollout, with the backbone's step.

`Learner.update(rollout)` does, in order:
1. one no-grad pass of the current policy over the rollout: `logp_old` (so the first step's PPO ratio is exactly
   1) and, with a reference model, `logp_ref`;
2. the sampler/trainer mismatch statistics of `exp(logp_old - sampler_logp)` on response tokens (a sampler that
   computes different numbers than the trainer makes on-policy RL silently off-policy);
3. optionally drops homogeneous groups (DAPO dynamic sampling, arXiv 2503.14476; off by default because LENS
   learns from all-wrong groups): their tokens leave the loss mask, so they enter no sum or token count;
4. the batch is cut to the band of columns that hold tokens (prompts are left-padded and responses right-padded
   to fixed budgets; the band is rounded to one of at most 8 widths, so the step compiles at most 8 times);
5. `ppo_epochs` passes over the rollout, each cut into mini-batches of whole groups (`config.batch_size` rows,
   one jitted train step each, accumulated over `config.micro_batch_size` micro-batches).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from nsa_jax import parallel
from nsa_jax.train.loop import NonFiniteError, device_batch, micro_batches
from nsa_jax.train.optim import learning_rate_schedule, make_optimizer
from nsa_jax.train.rl_loss import make_policy_loss_fn, make_scorer
from nsa_jax.train.rollout import Rollout, micro_batch_layout, used_columns, width_quantum
from nsa_jax.train.state import TrainState, init_state, split_model, state_shardings
from nsa_jax.train.step import jit_train_step, make_train_step


def steps_per_rollout(config: ml_collections.ConfigDict) -> int:
    """Optimiser steps taken on each rollout: `ppo_epochs * (Q * G / batch_size)`."""
    rows = config.rl.prompts_per_rollout * config.rl.group_size
    if rows % config.batch_size or config.batch_size % config.rl.group_size:
        raise ValueError(
            f"batch_size={config.batch_size} must be a multiple of rl.group_size={config.rl.group_size} and divide "
            f"the {rows} responses of a rollout (rl.prompts_per_rollout * rl.group_size)"
        )
    return config.rl.ppo_epochs * (rows // config.batch_size)


def mismatch_stats(logp_old: np.ndarray, sampler_logp: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Mean / max / min over response tokens of `exp(trainer logp - sampler logp)` (1 when both agree)."""
    on = mask > 0
    if not on.any():
        return {"mismatch_ratio_mean": 1.0, "mismatch_ratio_max": 1.0, "mismatch_ratio_min": 1.0}
    ratio = np.exp(np.clip(logp_old[on] - sampler_logp[on], -20.0, 20.0))
    return {
        "mismatch_ratio_mean": float(ratio.mean()),
        "mismatch_ratio_max": float(ratio.max()),
        "mismatch_ratio_min": float(ratio.min()),
    }


def homogeneous_groups(rewards: np.ndarray, group_size: int) -> np.ndarray:
    """[B] bool, True on the rows of groups whose responses are all right or all wrong."""
    correct = rewards.reshape(-1, group_size) > 0.5
    same = correct.all(axis=1) | ~correct.any(axis=1)
    return np.repeat(same, group_size)


class Learner:
    """The policy's TrainState plus everything needed to update it from rollouts.

    `tx` defaults to the config's optimiser (AdamW, warmup + cosine over the whole run); tests pass plain SGD to
    read gradients off parameter changes.
    """

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        model: nnx.Module,
        mesh: Mesh,
        *,
        total_steps: int,
        tx: optax.GradientTransformation | None = None,
    ):
        rl = config.rl
        self.config, self.mesh = config, mesh
        self.group_size = rl.group_size
        self.micro_batches = micro_batches(config)
        if config.batch_size // self.group_size % self.micro_batches:
            raise ValueError(
                f"micro_batch_size={config.micro_batch_size} must hold whole groups of rl.group_size={self.group_size}"
            )
        self.tx = tx or make_optimizer(config.optimizer, total_steps)
        graphdef, params = split_model(model)
        self.shardings = state_shardings(model, self.tx, mesh)
        loss_fn = make_policy_loss_fn(
            rl.loss,
            rl.loss_kwargs.to_dict(),
            group_size=rl.group_size,
            chunk_size=config.logprob_chunk_size,
            beta_kl=rl.beta_kl,
            tis_cap=rl.tis_cap,
            max_len=rl.max_new_tokens,
        )
        schedule = learning_rate_schedule(config.optimizer, total_steps) if tx is None else None
        self._step_fn = functools.lru_cache(maxsize=None)(
            lambda layout: jit_train_step(
                make_train_step(graphdef, loss_fn, self.tx, micro_batches=self.micro_batches, schedule=schedule),
                self.shardings,
                {k: parallel.batch_sharding(mesh, ndim) for k, ndim in layout},
            )
        )
        self._score = make_scorer(graphdef, chunk_size=config.logprob_chunk_size)
        self.new_state = functools.partial(init_state, tx=self.tx, seed=config.seed)
        self.state: TrainState = jax.jit(self.new_state, out_shardings=self.shardings)(params)
        # The frozen reference is the starting policy (a copy: the train step donates the state's buffers).
        self.ref_params = jax.tree.map(jnp.copy, params) if rl.beta_kl > 0 else None

    def score(self, params: Any, batch: dict[str, np.ndarray]) -> np.ndarray:
        """No-grad log-probs [B, T] of `params` on the rollout, one mini-batch (`batch_size` rows, the unit the
        train step shards over the devices) at a time."""
        rows = self.config.batch_size
        shardings = {k: parallel.batch_sharding(self.mesh, v.ndim) for k, v in batch.items()}
        chunks = []
        for start in range(0, len(batch["input_ids"]), rows):
            chunk = device_batch({k: v[start : start + rows] for k, v in batch.items()}, shardings)
            chunks.append(self._score(params, chunk))
        return np.concatenate(jax.device_get(chunks))

    def prepare(self, rollout: Rollout) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """The full update batch (with `logp_old`, `logp_ref`, the filter applied) and its statistics."""
        batch = rollout.batch()
        cols = used_columns(batch["attention_mask"], width_quantum(batch["input_ids"].shape[1]))
        batch = {k: v[:, cols] if v.ndim == 2 else v for k, v in batch.items()}
        stats = {"update_width": float(cols.stop - cols.start)}
        tokens = {k: batch[k] for k in ("input_ids", "attention_mask", "loss_mask")}
        batch["logp_old"] = self.score(self.state.params, tokens)
        if self.ref_params is not None:
            batch["logp_ref"] = self.score(self.ref_params, tokens)
        stats.update(mismatch_stats(batch["logp_old"], batch["sampler_logp"], batch["loss_mask"]))
        if self.config.rl.filter_homogeneous:
            drop = homogeneous_groups(batch["rewards"], self.group_size)
            batch["loss_mask"] = batch["loss_mask"] * ~drop[:, None]
            stats["filtered_frac"] = float(drop.mean())
        return batch, stats

    def update(self, rollout: Rollout, seed: int) -> dict[str, float]:
        """PPO epochs over `rollout`; returns the mismatch statistics and the step metrics averaged over steps."""
        batch, stats = self.prepare(rollout)
        rows, mini = len(rollout.rewards), self.config.batch_size
        groups = rows // self.group_size
        order = micro_batch_layout(mini, self.group_size, self.micro_batches)
        layout = tuple(sorted((k, v.ndim) for k, v in batch.items()))
        step_fn = self._step_fn(layout)
        history = []
        for epoch in range(self.config.rl.ppo_epochs):
            perm = np.random.default_rng([seed, epoch]).permutation(groups)
            rows_perm = (perm[:, None] * self.group_size + np.arange(self.group_size)).reshape(-1)
            for start in range(0, rows, mini):
                picked = rows_perm[start : start + mini][order]
                host = {k: v[picked] for k, v in batch.items()}
                shardings = {k: parallel.batch_sharding(self.mesh, v.ndim) for k, v in host.items()}
                self.state, metrics = step_fn(self.state, device_batch(host, shardings))
                history.append(metrics)
        history = jax.device_get(history)
        means = {k: float(np.mean([h[k] for h in history])) for k in history[0]}
        in_a_row = int(history[-1]["nonfinite_in_a_row"])
        if in_a_row >= self.config.nonfinite_max_in_a_row:
            raise NonFiniteError(
                f"loss or gradient non-finite {in_a_row} steps in a row "
                f"(nonfinite_max_in_a_row={self.config.nonfinite_max_in_a_row}); lower optimizer.learning_rate"
            )
        return {**stats, **means}
