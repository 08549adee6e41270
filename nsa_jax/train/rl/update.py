"""The optimisation side of online RL: one rollout -> the round of mini-batch steps the core loop runs.

`RLUpdate.round(batch, engine, seed)` does, in order:
1. cuts the batch to the band of columns that hold tokens (prompts are left-padded and responses right-padded to
   fixed budgets; the band is rounded to one of at most 8 widths, so the step compiles at most 8 times). With
   `rl.share_prompt` (off meshes with Explicit axes), each group's prompt is set apart instead
   (`rollouts.prompt_apart`, each part cut to its own band), and every forward of the update computes a prompt
   once for its G responses (`Transformer.hidden_states_after_prompt`): the same log-probs and gradients within
   float tolerance, with the prompt tokens' share of the work divided by G;
2. one no-grad scoring pass of the current policy: `logp_old` (so the first step's PPO ratio is exactly 1) and,
   with a reference model, `logp_ref` (`core.scoring`). When the rollout is a single optimiser step (one PPO
   epoch, one mini-batch: the miniature's setting) and `rl.logp_old` is "auto", the `logp_old` pass is skipped:
   the batch goes without it and the loss uses the step's own log-probs, gradient stopped (`logp_old_from_step`,
   `make_policy_loss_fn`). That is exact, not an approximation: the pass would score the very parameters the step
   differentiates. It saves one forward of the rollout (TRL's GRPO does the same at one iteration per generation);
3. the sampler/trainer mismatch statistics of `exp(logp_old - sampler_logp)` on response tokens (a sampler that
   computes different numbers than the trainer makes on-policy RL silently off-policy); with the pass skipped the
   step reports them from its own forward;
4. optionally drops homogeneous groups (DAPO dynamic sampling, arXiv 2503.14476; off by default because LENS
   learns from all-wrong groups): their tokens leave the loss mask, so they enter no sum or token count;
5. `ppo_epochs` passes over the rollout, each cut into mini-batches of whole groups (`config.batch_size` rows, one
   train step each; the core step keeps whole groups in each of its `config.micro_batch_size` micro-batches);
6. with the prompts set apart and `rl.pack_responses`, each step's batch carries `packed_width` [B, c]: its
   responses' real tokens run the position-wise layers packed into c slots per row of each micro-batch's
   data-parallel block (`models.Packing`; c is the round's largest block's tokens per row, rounded up to one
   of `PACKED_WIDTHS` (16) widths per band width, a multiple of 4, since each width compiles the step again).
   Left out where c would be the whole band (nothing to save). The scoring pass of step 2 packs its chunks of
   rows the same way, with a width of its own.
"""

from __future__ import annotations

from typing import Any

import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from nsa_jax import models, parallel
from nsa_jax.rollouts import Batch, homogeneous_groups, mismatch_stats, prompt_apart, token_band, width_quantum
from nsa_jax.train.core import Engine, Round, score_tokens, shares_prompt
from nsa_jax.train.rl.loss import make_policy_loss_fn


def steps_per_rollout(config: ml_collections.ConfigDict) -> int:
    """Optimiser steps taken on each rollout: `ppo_epochs * (Q * G / batch_size)`."""
    rows = config.rl.prompts_per_rollout * config.rl.group_size
    if rows % config.batch_size or config.batch_size % config.rl.group_size:
        raise ValueError(
            f"batch_size={config.batch_size} must be a multiple of rl.group_size={config.rl.group_size} and divide "
            f"the {rows} responses of a rollout (rl.prompts_per_rollout * rl.group_size)"
        )
    return config.rl.ppo_epochs * (rows // config.batch_size)


def logp_old_from_step(config: ml_collections.ConfigDict) -> bool:
    """Whether the train step's own log-probs (gradient stopped) stand in for `logp_old`: `rl.logp_old` "auto" and
    one optimiser step per rollout. "score" always runs the scoring pass (to compare, or to check the identity)."""
    mode = config.rl.logp_old
    if mode not in ("auto", "score"):
        raise ValueError(f"rl.logp_old must be 'auto' or 'score', got {mode!r}")
    return mode == "auto" and steps_per_rollout(config) == 1


def make_engine(
    config: ml_collections.ConfigDict,
    model: nnx.Module,
    mesh: Mesh,
    *,
    total_steps: int,
    tx: optax.GradientTransformation | None = None,
) -> Engine:
    """The policy's engine with the loss registered under `rl.loss` and its knobs (`rl.loss_kwargs`)."""
    rl = config.rl
    loss_fn = make_policy_loss_fn(
        rl.loss,
        rl.loss_kwargs.to_dict(),
        group_size=rl.group_size,
        chunk_size=config.logprob_chunk_size,
        beta_kl=rl.beta_kl,
        tis_cap=rl.tis_cap,
        max_len=rl.max_new_tokens,
    )
    return Engine.from_config(config, model, mesh, loss_fn, total_steps=total_steps, group_size=rl.group_size, tx=tx)


class RLUpdate:
    """Turns a rollout's `Batch` into the round of train steps of the engine's policy (see the module docstring).

    The frozen reference (for `rl.beta_kl > 0`) is the engine's starting policy, copied before any step.
    """

    def __init__(self, config: ml_collections.ConfigDict, engine: Engine):
        self.config = config
        self.score_old = not logp_old_from_step(config)
        self.ref_params = engine.initial_params() if config.rl.beta_kl > 0 else None

    def score(self, engine: Engine, params: Any, batch: Batch) -> np.ndarray:
        """No-grad log-probs [B, T] of `params` on the batch, one mini-batch (`batch_size` rows) at a time; with
        the responses packed (`packed_width`) where the train step's would be, each chunk of rows split into the
        blocks of its data-parallel shards."""
        rows, arrays = self.config.batch_size, batch.arrays()
        if self.packs(batch):
            mask = batch.tokens["attention_mask"]
            mask = np.concatenate([mask, np.zeros(((-len(mask)) % rows, mask.shape[1]), mask.dtype)])  # as map_rows
            width = _packed_width(list(mask.reshape(-1, rows, mask.shape[1])), engine)
            if width is not None:
                arrays["packed_width"] = np.zeros((len(batch), width), np.uint8)
        return score_tokens(
            engine.graphdef,
            params,
            arrays,
            mesh=engine.mesh,
            rows=rows,
            chunk_size=self.config.logprob_chunk_size,
            group_size=batch.group_size,
        )

    def prepare(self, batch: Batch, engine: Engine) -> tuple[Batch, dict[str, float]]:
        """The full update batch (band cut, `logp_old` unless the step makes it, `logp_ref`, the filter applied) and
        its statistics."""
        apart = prompt_apart(batch, self.config.rl.max_prompt_len) if shares_prompt(self.config, engine.mesh) else None
        batch = token_band(batch) if apart is None else apart
        stats = {"update_width": float(batch.tokens["input_ids"].shape[1]), "shared_prompt": float(apart is not None)}
        if apart is not None:
            stats["update_width"] += apart.rows["prompt_ids"].shape[1]
        if self.score_old:
            batch = batch.with_tokens(logp_old=self.score(engine, engine.state.params, batch))
            tokens = batch.tokens
            stats.update(mismatch_stats(tokens["logp_old"], tokens["sampler_logp"], tokens["loss_mask"]))
        if self.ref_params is not None:
            batch = batch.with_tokens(logp_ref=self.score(engine, self.ref_params, batch))
        tokens = batch.tokens
        if self.config.rl.filter_homogeneous:
            drop = homogeneous_groups(batch.rows["rewards"], batch.group_size)
            batch = batch.with_tokens(loss_mask=tokens["loss_mask"] * ~drop[:, None])
            stats["filtered_frac"] = float(drop.mean())
        return batch, stats

    def round(self, batch: Batch, engine: Engine, seed: int) -> Round:
        """PPO epochs over `batch`: each a seeded permutation of its groups cut into mini-batches of whole groups."""
        batch, stats = self.prepare(batch, engine)
        g, rows, mini = batch.group_size, len(batch), self.config.batch_size
        steps = []
        for epoch in range(self.config.rl.ppo_epochs):
            perm = np.random.default_rng([seed, epoch]).permutation(rows // g)
            order = (perm[:, None] * g + np.arange(g)).reshape(-1)
            steps += [batch.take(order[start : start + mini]) for start in range(0, rows, mini)]
        width = self.packed_width(batch, engine, steps)
        if width is not None:
            steps = [{**step, "packed_width": np.zeros((len(step["input_ids"]), width), np.uint8)} for step in steps]
        stats["packed_frac"] = 1.0 if width is None else width / batch.tokens["input_ids"].shape[1]
        return Round(steps, stats)

    def packed_width(self, batch: Batch, engine: Engine, steps: list[dict[str, np.ndarray]]) -> int | None:
        """Slots per row that hold every micro-batch block's response tokens in all of `steps` (see
        `models.packed_width`), or None where the responses are not packed (`packs`, or no column saved)."""
        if not self.packs(batch):
            return None
        return _packed_width([m for step in steps for m in engine.micro_batch_rows(step["attention_mask"])], engine)

    def packs(self, batch: Batch) -> bool:
        """Whether the responses of `batch` run packed: `rl.pack_responses`, prompts set apart, and every response
        filling its row from column 0 (the packed log-probs take a slot's predecessor from the slot before)."""
        if not (self.config.rl.pack_responses and "prompt_ids" in batch.rows):
            return False
        mask = batch.tokens["attention_mask"] > 0
        return not (mask[:, 1:] > mask[:, :-1]).any()  # no token after padding


# Packed widths a band width may take. Each compiles the step (and the scoring pass) again: at a step of 4, 300
# simulated rollouts of the Qwen2.5-1.5B preset (512 responses of log-normal lengths around 350 of 1024 tokens,
# 16-row micro-batches over 8 devices) drew 67 distinct widths; at 16 widths per band 5, for 3% more slots
# (`benchmarks/packed_widths.py`).
PACKED_WIDTHS = 16


def _packed_width(masks: list[np.ndarray], engine: Engine) -> int | None:
    """`models.packed_width` of the masks of the calls (each `[rows, T]`, split over the engine's data-parallel
    shards), rounded to one of `PACKED_WIDTHS` widths (`width_quantum`: a multiple of 4, so 4 up to 64 columns),
    or None when packing would save no column."""
    band = masks[0].shape[1]
    quantum = width_quantum(band, PACKED_WIDTHS, multiple=4)
    width = models.packed_width(masks, parallel.batch_shards(engine.mesh, len(masks[0])), quantum=quantum)
    return None if width >= band else width
