"""Supervised fine-tuning: masked NLL of response tokens (prompt tokens carry no loss).

Used to warm-start the tiny model on the built-in tasks' canonical solutions. The loop is the core's
(`core.loop.run`): the `Batcher` is the source, one batch a round.
"""

from __future__ import annotations

import jax
import ml_collections
from flax import nnx
from jax.sharding import Mesh

from nsa_jax import losses, models, parallel
from nsa_jax.train.core import Engine, LossFn, export_policy, load_policy, model_dir, run, run_dir
from nsa_jax.train.core.step import Batch
from nsa_jax.train.sft import data as data_lib
from nsa_jax.train.sft.evaluate import evaluate, format_table


def nll_loss(model: nnx.Module, batch: Batch, rng: jax.Array, *, chunk_size: int):
    """Token-mean NLL of `input_ids[:, 1:]` where `loss_mask[:, 1:]` is 1: LossTerm (sum of -log p, #tokens).

    Log-probs come from `losses.token_logprobs` on the final hidden states, so [B, T, V] float32 logits never exist.
    """
    del rng  # SFT is deterministic given the batch
    hidden = model.hidden_states(batch["input_ids"], attention_mask=batch["attention_mask"])  # [B, T, d]
    logp = losses.token_logprobs(
        hidden[:, :-1], model.unembedding(), batch["input_ids"][:, 1:], chunk_size=chunk_size
    )  # [B, T-1]
    term = losses.aggregate(-logp, batch["loss_mask"][:, 1:], "token-mean")
    return term, {"nll": term, "response_tokens": term.denom}


def sft_pairs(config: ml_collections.ConfigDict) -> list[tuple[str, str]]:
    """The training (prompt, response) pairs: a local JSONL file (`data.path`) or a built-in task."""
    d = config.data
    if d.path:
        return data_lib.jsonl_pairs(d.path)
    return data_lib.task_pairs(
        d.task, d.num_examples, seed=d.seed, difficulty=d.difficulty or None, stop_early=d.stop_early
    )


def fit(
    config: ml_collections.ConfigDict, model: nnx.Module, loss_fn: LossFn, data: data_lib.Batcher, mesh: Mesh
) -> Engine:
    """Trains `model` for `config.max_steps` steps of `loss_fn` on `data`, resuming from the latest checkpoint in
    the run directory; returns the engine (`engine.policy()` is the trained model)."""
    engine = Engine.from_config(config, model, mesh, loss_fn, total_steps=config.max_steps)
    run(config, engine, data, rounds=config.max_steps, desc=config.trainer, log_every=config.log_every)
    return engine


def train(config: ml_collections.ConfigDict) -> nnx.Module:
    """Loads the policy and data (failing before anything is written), fits, exports; returns the trained model."""
    pairs = sft_pairs(config)
    path = model_dir(config)
    tokenizer = models.load_tokenizer(path)
    rows = data_lib.tokenize(pairs, tokenizer, config.data.seq_len)
    batcher = data_lib.Batcher(rows, config.batch_size, config.data.seed)
    mesh = parallel.make_mesh(config.mesh.data, config.mesh.fsdp, config.mesh.tensor)

    def loss_fn(m, batch, rng):
        return nll_loss(m, batch, rng, chunk_size=config.logprob_chunk_size)

    model = fit(config, load_policy(config, mesh, path), loss_fn, batcher, mesh).policy()
    if config.export.enabled:
        export_policy(model, run_dir(config, "export"), tokenizer_from=path)
    if config.eval.enabled:
        table = format_table(evaluate(model, tokenizer, config), config.data.task)
        if parallel.is_main_process():
            print(table, flush=True)
    return model
