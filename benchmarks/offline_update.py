"""Seconds per optimiser step of the offline trainer (BCPG-NSA on a stored set: `GroupEpochs` rounds run by the
engine) over whole rows against each group's prompt set apart, same model, same set, same run.

The stored set is synthetic in the miniature's shape (`benchmarks/rl_update.py`'s rollout: prompts of 30-43 tokens
left-padded to 56, responses of 20-40 tokens in a budget of 64, groups of 8), with BCPG-NSA's step labels (a step
every 6 response tokens, random consensus verdicts) and random behaviour log-probs; a step is one mini-batch of
`--batch` rows (whole groups), as `configs/offline_tiny.py` trains. Variants:
- whole rows: each round cut to its token band (the offline trainer before the shared prompt);
- prompt once per group (`rl.share_prompt`): each round's prompts set apart (`GroupEpochs(prompt_width=...)`), so
  every forward computes a prompt once for its group.
Rounds alternate between the variants over the same positions; read the best times.

    python benchmarks/offline_update.py [--prompts 32 --group 8 --batch 64 --repeats 7]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # for `configs`, `benchmarks`
if __name__ == "__main__":  # the host as the main job sets it up (nsa_jax/hugepages.py, nsa_jax/cpu_devices.py)
    from nsa_jax import cpu_devices, hugepages

    hugepages.reexec()
    cpu_devices.configure()

import numpy as np

from benchmarks.rl_update import add_rollout_args, make_rollout
from configs import offline_tiny
from nsa_jax import models, parallel, rollouts
from nsa_jax.models.tiny import VARIANTS
from nsa_jax.rollouts import Batch
from nsa_jax.train.core import Engine, GroupEpochs
from nsa_jax.train.rl.loss import make_policy_loss_fn


def stored_set(args: argparse.Namespace, vocab: int) -> Batch:
    """The synthetic set as the offline trainer's `training_batch` lays it out: `logp_old` the behaviour log-probs,
    per-token `step_ids`, per-row `step_correct`."""
    batch = make_rollout(args, vocab).batch()
    loss = batch.tokens["loss_mask"]
    rng = np.random.default_rng(1)
    position = np.cumsum(loss, axis=1) - 1  # index of each response token in its response
    step_ids = np.where(loss > 0, position // 6, -1).astype(np.int32)
    steps = int(step_ids.max()) + 1
    logp_b = (-rng.exponential(1.0, loss.shape) * loss).astype(np.float32)
    tokens = {**{k: v for k, v in batch.tokens.items() if k != "sampler_logp"}, "logp_old": logp_b}
    rows = {"rewards": batch.rows["rewards"], "step_correct": rng.random((len(batch), steps)) < 0.5}
    return Batch({**tokens, "step_ids": step_ids}, rows, batch.group_size)


class Variant:
    """One way of cutting the rounds, with its own engine (so its programs compile once)."""

    def __init__(self, args: argparse.Namespace, shared: bool):
        self.name = "prompt once per group" if shared else "whole rows"
        config = offline_tiny.get_config("bcpg_nsa")
        model = models.init_model(VARIANTS["tiny"], seed=0)
        batch = stored_set(args, model.config.vocab_size)
        loss_fn = make_policy_loss_fn(
            "bcpg",
            config.offline.loss_kwargs.to_dict(),
            group_size=args.group,
            chunk_size=512,
            batch_kwargs={"step_ids": "step_ids", "step_correct": "step_correct"},
        )
        mesh = parallel.make_mesh()
        self.engine = Engine.from_config(config, model, mesh, loss_fn, total_steps=1000, group_size=args.group)
        width = rollouts.response_start(batch) if shared else None
        self.source = GroupEpochs(batch, args.batch, seed=0, prompt_width=width)
        self.seconds: list[float] = []
        self.run(0)  # compile

    def run(self, position: int) -> None:
        start = time.perf_counter()
        round_ = self.source.round(position, self.engine)
        self.engine.run_round(round_)
        self.seconds.append(time.perf_counter() - start)
        self.width = round_.batches[0]["input_ids"].shape[1]
        if "prompt_ids" in round_.batches[0]:
            self.width += round_.batches[0]["prompt_ids"].shape[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_rollout_args(parser, repeats=7)
    parser.add_argument("--batch", type=int, default=64, help="rows per optimiser step (whole groups)")
    args = parser.parse_args()
    print(f"bcpg_nsa, a set of {args.prompts} x {args.group} rows, {args.batch} per step, budget "
          f"{args.prompt_budget} + {args.new_budget}:")  # fmt: skip
    variants = [Variant(args, shared) for shared in (False, True)]
    steps = variants[0].source.steps_per_epoch
    for i in range(args.repeats):  # alternating, over the same positions, so load falls on both alike
        for v in variants:
            v.run(1 + i % steps)
    for v in variants:
        print(f"  {v.name}: {v.width} columns, best {min(v.seconds):.3f} s, median {np.median(v.seconds):.3f} s")
    whole, shared = variants
    print(
        f"the prompt once per group over whole rows: {min(whole.seconds) / min(shared.seconds):.2f}x best, "
        f"{np.median(whole.seconds) / np.median(shared.seconds):.2f}x median"
    )


if __name__ == "__main__":
    main()
