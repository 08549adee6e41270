"""Supervised fine-tuning: masked NLL of response tokens (prompt tokens carry no loss).

Used to warm-start the tiny model on the built-in tasks' canonical solutions, and later by RFT (which is SFT on
the policy's own correct samples).
"""

from __future__ import annotations

import jax
import ml_collections
from flax import nnx

from nsa_jax import losses, models, parallel
from nsa_jax.train import data as data_lib
from nsa_jax.train.evaluate import evaluate, format_table
from nsa_jax.train.loop import fit, run_dir
from nsa_jax.train.policy import export_policy, load_policy, model_dir, set_params
from nsa_jax.train.step import Batch


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
    return data_lib.task_pairs(d.task, d.num_examples, seed=d.seed, difficulty=d.difficulty or None)


def train(config: ml_collections.ConfigDict) -> nnx.Module:
    """Loads the policy and data (failing before anything is written), fits, exports; returns the trained model."""
    pairs = sft_pairs(config)
    path = model_dir(config)
    tokenizer = models.load_tokenizer(path)
    rows = data_lib.tokenize(pairs, tokenizer, config.data.seq_len)
    batcher = data_lib.Batcher(rows, config.batch_size, config.data.seed)
    mesh = parallel.make_mesh(config.mesh.data, config.mesh.fsdp, config.mesh.tensor)
    model = load_policy(config, mesh, path)

    def loss_fn(m, batch, rng):
        return nll_loss(m, batch, rng, chunk_size=config.logprob_chunk_size)

    state = fit(config, model, loss_fn, batcher, mesh)
    set_params(model, state.params)
    if config.export.enabled:
        export_policy(model, run_dir(config, "export"), tokenizer_from=path)
    if config.eval.enabled:
        table = format_table(evaluate(model, tokenizer, config), config.data.task)
        if parallel.is_main_process():
            print(table, flush=True)
    return model
