"""Reward-model trainer (`config.trainer = "reward_model"`): a scalar head on the policy's backbone, trained with
the centre-regularised Bradley-Terry loss (`losses.bt_loss`, ALGORITHMS.md section 4) on (correct, wrong) response
pairs of the same prompt, on the core loop.

Pairs come from `rm.pairs` as DPO's do (`preference.dpo`): "offline" pairs the i-th correct response of each
stored group with its i-th wrong one; a JSONL path gives `{"prompt", "chosen", "rejected"}` lines. A pair's score is
the head's score at the response's last token (its EOS). Prompts are split into training and held-out ones by a
hash of their tokens (`rm.heldout_frac`), so no held-out prompt is ever trained on, whatever the source; held-out
pairwise accuracy (ties count half) is evaluated before training and every `eval.every` rounds, and written with the
training figures to `<workdir>/eval_rm.json`. The trained head is exported as a one-label
`<Family>ForSequenceClassification` directory (`models.heads`).
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import numpy as np

from nsa_jax import losses, models, parallel
from nsa_jax.rollouts import Batch, OfflineSet, split_by_prompt
from nsa_jax.train.core import (
    Engine,
    GroupEpochs,
    dtype_of,
    export_policy,
    model_dir,
    param_placement,
    run,
    run_dir,
)
from nsa_jax.train.core.step import Batch as StepBatch
from nsa_jax.train.preference.dpo import pairs_from_jsonl, pairs_from_offline


def pair_scores(head: models.ScalarHead, batch: StepBatch) -> jax.Array:
    """[2P] rows (chosen, rejected alternating) -> [P, 2] scores at each response's last token."""
    scores = head(batch["input_ids"], attention_mask=batch["attention_mask"])
    return models.last_token_scores(scores, batch["loss_mask"]).reshape(-1, 2)


def bt_loss_fn(head: models.ScalarHead, batch: StepBatch, rng: jax.Array, *, center_coef: float):
    del rng
    r = pair_scores(head, batch)
    return losses.bt_loss(r[:, 0], r[:, 1], center_coef=center_coef)


def pairwise_accuracy(head: models.ScalarHead, pairs: Batch, mesh, rows: int) -> float:
    """Share of `pairs` whose chosen response scores above the rejected one (ties count half), `rows` rows at a
    time; a pair's score is the head's at each row's last attended token, its response's EOS."""
    arrays = [pairs.tokens[k] for k in ("input_ids", "attention_mask")]
    r = parallel.map_rows(models.sequence_scores, head, arrays, rows=rows, mesh=mesh).reshape(-1, 2)
    return float(np.mean((r[:, 0] > r[:, 1]) + 0.5 * (r[:, 0] == r[:, 1])))


def load_pairs(config: ml_collections.ConfigDict, tokenizer) -> Batch:
    r = config.rm
    if r.pairs == "offline":
        return pairs_from_offline(OfflineSet.load(r.dataset_dir))
    return pairs_from_jsonl(r.pairs, tokenizer, config.data.seq_len)


def train(config: ml_collections.ConfigDict) -> models.ScalarHead:
    """Bradley-Terry training of a scalar head for `rm.epochs` passes over the training pairs; returns the head."""
    r = config.rm
    path = model_dir(config)
    tokenizer = models.load_tokenizer(path)
    train_pairs, heldout_pairs = split_by_prompt(load_pairs(config, tokenizer), r.heldout_frac)
    if len(heldout_pairs) == 0:
        raise ValueError(f"rm.heldout_frac={r.heldout_frac} holds out no pair of {len(train_pairs) // 2}")
    mesh = parallel.make_mesh(config.mesh.data, config.mesh.fsdp, config.mesh.tensor)
    head = models.from_pretrained_head(
        path,
        dtype=dtype_of(config.model.dtype),
        param_dtype=dtype_of(config.model.param_dtype),
        shardings=param_placement(mesh),
    )
    source = GroupEpochs(train_pairs, config.batch_size, config.data.seed)
    steps = r.epochs * source.steps_per_epoch

    def loss_fn(m, batch, rng):
        return bt_loss_fn(m, batch, rng, center_coef=r.center_coef)

    engine = Engine.from_config(config, head, mesh, loss_fn, total_steps=steps, group_size=2)

    def evaluate(position: int) -> dict[str, float]:
        del position
        return {"heldout_accuracy": pairwise_accuracy(engine.policy(), heldout_pairs, mesh, config.batch_size)}

    every = config.eval.every or steps
    history = run(config, engine, source, rounds=steps, desc="reward_model", evaluate=evaluate, eval_every=every)
    evals = [h["eval/heldout_accuracy"] for h in history if "eval/heldout_accuracy" in h]
    last = history[-1] if history else {}
    report = {
        "pairs_train": len(train_pairs) // 2,
        "pairs_heldout": len(heldout_pairs) // 2,
        "steps": steps,
        "start/heldout_accuracy": evals[0] if evals else None,
        "heldout_accuracy": evals[-1] if evals else None,
        "train_accuracy": last.get("accuracy"),
        "margin": last.get("margin"),
    }
    head = engine.policy()
    if parallel.is_main_process():
        os.makedirs(config.workdir, exist_ok=True)
        with open(os.path.join(config.workdir, "eval_rm.json"), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    if config.export.enabled:
        export_policy(head, run_dir(config, "export"), tokenizer_from=path, save=models.save_head)
    return head
