"""DPO trainer (`config.trainer = "dpo"`): sigmoid DPO or IPO on (prompt, chosen, rejected) pairs, on the core loop.

A pair is a group of two rows, chosen then rejected, so the core step's group-preserving micro-batches never split
one. The frozen reference is the start policy; its sequence log-prob sums are computed once (`core.scoring`) and
stored in `<workdir>/reference_sums.npy`, so training needs no second model. The columns that a pair's two rows
share from the left (the prompt, or the part of it that every pair's prompt fills) are computed once per pair
under `rl.share_prompt` (`core.shared_prompt_width`). Pairs come from `dpo.pairs`:
- "offline": a stored set (`dpo.dataset_dir`, as `offline.dataset_dir` writes it): in each group, the i-th correct
  response against the i-th wrong one (the DPO baseline of the BCPG-NSA paper's table, beta 0.5 there);
- a path to a JSONL file of `{"prompt", "chosen", "rejected"}` lines (PNS negatives, or any preference data),
  tokenised like SFT data.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from nsa_jax import losses, models, parallel
from nsa_jax.rollouts import Batch, OfflineSet
from nsa_jax.train.core import (
    Engine,
    GroupEpochs,
    export_policy,
    load_policy,
    model_dir,
    run,
    run_dir,
    score_tokens,
    sequence_logprobs,
    shared_prompt_width,
)
from nsa_jax.train.core.step import Batch as StepBatch
from nsa_jax.train.rl.trainer import TaskSetting, summarize
from nsa_jax.train.sft import data as data_lib

TOKENS = ("input_ids", "attention_mask", "loss_mask")


def dpo_loss_fn(model: nnx.Module, batch: StepBatch, rng: jax.Array, *, beta: float, kind: str, chunk_size: int):
    """`losses.dpo_loss` on the rows' sequence log-prob sums; rows `2p` / `2p + 1` are pair `p`'s chosen / rejected."""
    del rng
    logp = sequence_logprobs(model, batch, chunk_size=chunk_size, group_size=2)  # a pair's prompt once, when apart
    sums = jnp.sum(logp * batch["loss_mask"], axis=1)  # [2P]
    lp, lr = sums.reshape(-1, 2), batch["ref_sum"].reshape(-1, 2)
    return losses.dpo_loss(lp[:, 0], lp[:, 1], lr[:, 0], lr[:, 1], beta=beta, kind=kind)


def pairs_from_offline(offline: OfflineSet) -> Batch:
    """Chosen / rejected rows from a stored set: in each group, correct response i against wrong response i."""
    g, rewards = offline.group_size, offline.batch.rows["rewards"]
    rows = []
    for q in range(len(offline)):
        right = [q * g + j for j in range(g) if rewards[q * g + j] > 0.5]
        wrong = [q * g + j for j in range(g) if rewards[q * g + j] <= 0.5]
        rows += [r for pair in zip(right, wrong) for r in pair]
    index = np.asarray(rows, np.int64)
    return Batch({k: offline.batch.tokens[k][index] for k in TOKENS}, {}, 2)


def pairs_from_jsonl(path: str, tokenizer, seq_len: int) -> Batch:
    """Chosen / rejected rows tokenised like SFT data from `{"prompt", "chosen", "rejected"}` lines."""
    records = data_lib.jsonl_records(path, ("prompt", "chosen", "rejected"))
    rows = data_lib.tokenize(
        [(p, r) for p, chosen, rejected in records for r in (chosen, rejected)], tokenizer, seq_len
    )
    return Batch({k: getattr(rows, k) for k in TOKENS}, {}, 2)


def reference_sums(config: ml_collections.ConfigDict, engine: Engine, pairs: Batch) -> np.ndarray:
    """[2P] sequence log-prob sums of the start policy, computed once into `<workdir>/reference_sums.npy`."""
    path = os.path.join(config.workdir, "reference_sums.npy")
    if not os.path.isfile(path):
        logp = score_tokens(
            engine.graphdef,
            engine.initial_params(),
            pairs.tokens,
            mesh=engine.mesh,
            rows=config.batch_size,
            chunk_size=config.logprob_chunk_size,
        )
        sums = logp.sum(axis=1).astype(np.float32)

        def write() -> None:
            os.makedirs(config.workdir, exist_ok=True)
            np.save(path + ".tmp.npy", sums)
            os.replace(path + ".tmp.npy", path)

        parallel.main_process_first("reference_sums", write)
    sums = np.load(path)
    if sums.shape != (len(pairs),):
        raise ValueError(f"{path} holds {sums.shape[0]} sums for {len(pairs)} rows; use a new workdir")
    return sums


def train(config: ml_collections.ConfigDict) -> nnx.Module:
    """DPO for `dpo.epochs` passes over the pairs; writes `<workdir>/eval_dpo.json` (the last step's preference
    metrics and, with `eval.enabled`, the held-out pass@k before and after with each gain's paired interval, as
    the RL trainer reports them) and, with `export.enabled`, the policy."""
    d = config.dpo
    path = model_dir(config)
    tokenizer = models.load_tokenizer(path)
    if d.pairs == "offline":
        pairs = pairs_from_offline(OfflineSet.load(d.dataset_dir))
    else:
        pairs = pairs_from_jsonl(d.pairs, tokenizer, config.data.seq_len)
    mesh = parallel.make_mesh(config.mesh.data, config.mesh.fsdp, config.mesh.tensor)
    steps = d.epochs * (len(pairs) // config.batch_size)

    def loss_fn(m, batch, rng):
        return dpo_loss_fn(m, batch, rng, beta=d.beta, kind=d.kind, chunk_size=config.logprob_chunk_size)

    engine = Engine.from_config(config, load_policy(config, mesh, path), mesh, loss_fn, total_steps=steps, group_size=2)
    pairs = pairs.with_rows(ref_sum=reference_sums(config, engine, pairs))
    setting = TaskSetting(config) if config.eval.enabled else None
    history = run(
        config,
        engine,
        GroupEpochs(pairs, config.batch_size, config.data.seed, prompt_width=shared_prompt_width(config, mesh, pairs)),
        rounds=steps,
        desc="dpo",
        evaluate=(lambda position: setting.evaluate(engine.policy(), position)) if setting else None,
        eval_every=config.eval.every or steps,
    )
    trained = [r for r in history if r["step"] > 0 and "loss" in r]
    last = {k: v for k, v in trained[-1].items() if k.startswith("reward_") or k == "loss"} if trained else {}
    held = {**summarize(history), **setting.gains(history)} if setting else {}
    if parallel.is_main_process():
        os.makedirs(config.workdir, exist_ok=True)
        summary = {"pairs": len(pairs) // 2, "steps": steps, "kind": d.kind, "beta": d.beta, **last, **held}
        with open(os.path.join(config.workdir, "eval_dpo.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
    model = engine.policy()
    if config.export.enabled:
        export_policy(model, run_dir(config, "export"), tokenizer_from=path)
    return model
