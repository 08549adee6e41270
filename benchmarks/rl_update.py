"""Seconds per RL update (`RLUpdate.round` run by the engine: the logp_old pass unless the step makes it, then the
train step) with and without four of issue 17's levers, same model, same rollout, same run.

Lever 1, the token band. A rollout is laid out at the full budget width, `max_prompt_len + max_new_tokens` (prompts left-padded, responses
right-padded), but a batch's tokens usually fill a narrower band: shorter prompts than the budget, responses that
stop early. `RLUpdate.prepare` cuts the batch to that band (rounded to one of at most 8 widths); the peer here is the
same update on the full width (the behaviour before the cut). The default shape is the miniature's level-1 rollout:
32 prompts x 8 responses, budgets 56 + 64, prompts of 30-43 tokens, responses of 20-40.

Lever 2, logp_old from the step (`rl.logp_old = "auto"`): a rollout that is one optimiser step (the miniature's)
needs no separate scoring pass, since the step's own log-probs, gradient stopped, are `logp_old` exactly. The peer
is the same update with the pass (`rl.logp_old = "score"`, the behaviour before).

Lever 3, the prompt once per group (`rl.share_prompt`): each group's prompt is set apart from its G responses and
every forward of the update computes it once (`Transformer.hidden_states_after_prompt`); the responses attend to
its keys. The peer is the same update over whole rows.

Lever 4, the responses packed (`rl.pack_responses`): the responses' real tokens run the projections, the MLP, the
norms and the log-probs without their padding (`models.Packing`), the attention on the rows. The peer is lever 3's
update on the padded rows; the scoring pass is timed packed and padded too (the update's time before the step,
with `rl.logp_old = "score"`).

The peer in PyTorch: the same GRPO update in eager mode on the same rollout, `transformers.LlamaForCausalLM` with the
same weights, whole rows cut to the same token band, `logp_old = logp.detach()` (TRL's GRPO at one iteration per
generation), the loss of `benchmarks/train_step.py`, gradient clipping and AdamW, 2 threads.

Rounds alternate between the variants; read the best times (on a shared VM the same compiled step has been
seen to take 1.4 s in one round and 2.2 s in the next).

    python benchmarks/rl_update.py [--prompts 32 --group 8 --prompt-budget 56 --new-budget 64 --repeats 7]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # for `configs`, `benchmarks`
if __name__ == "__main__":  # the host as the main job sets it up (nsa_jax/hugepages.py, nsa_jax/cpu_devices.py)
    from nsa_jax import cpu_devices, hugepages

    hugepages.reexec()
    cpu_devices.configure()

import ml_collections
import numpy as np

from configs import base
from configs.rl_presets import METHODS, method, rl_defaults
from nsa_jax import models, parallel
from nsa_jax.models.tiny import VARIANTS
from nsa_jax.rollouts import Rollout, token_band
from nsa_jax.train.rl import RLUpdate, make_engine
from nsa_jax.train.rl import update as rl_update


def make_rollout(args: argparse.Namespace, vocab: int, seed: int = 0) -> Rollout:
    """Left-padded prompts and right-padded responses of random lengths in the given ranges; rewards in {0, 1}."""
    rng = np.random.default_rng(seed)
    b, p, n = args.prompts * args.group, args.prompt_budget, args.new_budget
    prompt_len = np.repeat(rng.integers(args.prompt_min, args.prompt_max + 1, args.prompts), args.group)
    response_len = rng.integers(args.response_min, args.response_max + 1, b)
    cols = np.arange(p + n)[None]
    prompt = (cols >= p - prompt_len[:, None]) & (cols < p)
    response = (cols >= p) & (cols < p + response_len[:, None])
    attention = (prompt | response).astype(np.int32)
    ids = rng.integers(3, vocab, (b, p + n))
    ids[:, :p] = np.repeat(ids[:: args.group, :p], args.group, axis=0)  # a group's responses share its prompt
    return Rollout(
        input_ids=(ids * attention).astype(np.int32),
        attention_mask=attention,
        loss_mask=response.astype(np.float32),
        sampler_logp=np.zeros((b, p + n), np.float32),
        rewards=rng.integers(0, 2, b).astype(np.float32),
        difficulty=np.ones(b, np.int32),
        responses=[""] * b,
        group_size=args.group,
    )


def config(
    args: argparse.Namespace, logp_old: str = "auto", share_prompt: bool = False, pack: bool = True
) -> ml_collections.ConfigDict:
    c = rl_defaults(base.get_config())
    c.rl.logp_old = logp_old
    c.rl.share_prompt = share_prompt
    c.rl.pack_responses = pack
    c.rl.prompts_per_rollout, c.rl.group_size = args.prompts, args.group
    c.rl.max_prompt_len, c.rl.max_new_tokens = args.prompt_budget, args.new_budget
    c.batch_size = args.prompts * args.group
    c.logprob_chunk_size = 512
    return method(c, args.method)


class Variant:
    """One way of running the update: its own engine (so the programs compile once each) on the same rollout."""

    def __init__(
        self, args: argparse.Namespace, full_width: bool, logp_old: str, share_prompt: bool = False, pack: bool = True
    ):
        self.name = f"{'full width' if full_width else 'token band'}, logp_old {logp_old!r}"
        self.name += (", prompt once per group" + (", responses packed" if pack else "")) if share_prompt else ""
        self.full_width = full_width
        model = models.init_model(VARIANTS["tiny"], seed=0)
        cfg = config(args, logp_old, share_prompt, pack)
        self.engine = make_engine(cfg, model, parallel.make_mesh(), total_steps=args.repeats + 2)
        self.update = RLUpdate(cfg, self.engine)
        self.batch = make_rollout(args, model.config.vocab_size).batch()
        self.seconds: list[float] = []  # whole updates
        self.prepare: list[float] = []  # of which the band cut and the scoring passes (`RLUpdate.round`)
        self.width = self.run(seed=0)  # compile

    def run(self, seed: int) -> float:
        """One update: records its wall time, returns its width in columns."""
        cut = rl_update.token_band
        if self.full_width:
            rl_update.token_band = lambda b: b
        try:
            start = time.perf_counter()
            round_ = self.update.round(self.batch, self.engine, seed=seed)
            prepared = time.perf_counter()
            metrics = self.engine.run_round(round_)
            self.seconds.append(time.perf_counter() - start)
            self.prepare.append(prepared - start)
        finally:
            rl_update.token_band = cut
        self.packed = metrics["packed_frac"]
        return metrics["update_width"]


class TorchPeer:
    """The same update in PyTorch eager (see the module docstring), timed like a `Variant`."""

    def __init__(self, args: argparse.Namespace, path: str):
        import torch
        import transformers

        from benchmarks.train_step import OPT, torch_grpo_loss

        torch.set_num_threads(2)
        self.name, self.seconds, self.prepare = "torch eager, token band, logp_old = logp.detach()", [], []
        self.model = transformers.LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.float32).train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=OPT.learning_rate, betas=(OPT.b1, OPT.b2),
                                     eps=OPT.eps, weight_decay=OPT.weight_decay)  # fmt: skip
        band = token_band(make_rollout(args, self.model.config.vocab_size).batch())
        t = {k: torch.from_numpy(v) for k, v in band.arrays().items()}
        self.ids, self.attention = t["input_ids"].long(), t["attention_mask"].long()
        self.mask, self.rewards, self.group = t["loss_mask"][:, 1:], t["rewards"], args.group
        self.loss, self.max_norm, self.torch = torch_grpo_loss, OPT.max_grad_norm, torch
        self.width = float(self.ids.shape[1])
        self.run(seed=0)  # warm up

    def run(self, seed: int) -> float:
        del seed
        start = time.perf_counter()
        logits = self.model(input_ids=self.ids, attention_mask=self.attention).logits[:, :-1].float()
        logp = self.torch.log_softmax(logits, -1).gather(-1, self.ids[:, 1:, None])[..., 0]
        loss = self.loss(logp, logp.detach(), self.rewards, self.mask, self.group)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_norm)
        self.opt.step()
        self.seconds.append(time.perf_counter() - start)
        self.prepare.append(0.0)
        return self.width


def add_rollout_args(parser: argparse.ArgumentParser, repeats: int) -> None:
    """The method and the synthetic rollout's shape (defaults: the miniature's level-1 rollout), and the repeats."""
    parser.add_argument("--method", default="grpo", choices=sorted(METHODS))
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--prompt-budget", type=int, default=56)
    parser.add_argument("--new-budget", type=int, default=64)
    parser.add_argument("--prompt-min", type=int, default=30)
    parser.add_argument("--prompt-max", type=int, default=43)
    parser.add_argument("--response-min", type=int, default=20)
    parser.add_argument("--response-max", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_rollout_args(parser, repeats=7)
    args = parser.parse_args()
    print(f"{args.method}, {args.prompts} x {args.group} rows, budget {args.prompt_budget} + {args.new_budget}:")
    variants = (True, "score"), (False, "score"), (False, "auto"), (False, "auto", True, False), (False, "auto", True)
    full, band, step, shared, packed = (Variant(args, *v) for v in variants)
    # The scoring pass (rl.logp_old = "score") on the shared prompt, its responses padded and packed.
    scored_padded, scored_packed = Variant(args, False, "score", True, False), Variant(args, False, "score", True)
    with tempfile.TemporaryDirectory() as tmp:
        torch_peer = TorchPeer(args, str(models.tiny_model_dir(os.path.join(tmp, "model"))))
    everyone = (full, band, step, shared, packed, scored_padded, scored_packed, torch_peer)
    for i in range(args.repeats):  # alternating, so a change in the machine's load falls on all of them alike
        for variant in everyone:
            variant.run(seed=i + 1)
    for v in everyone:
        print(
            f"  {v.name}: {v.width:.0f} columns, best {min(v.seconds):.2f} s, median {np.median(v.seconds):.2f} s "
            f"(of which before the step: best {min(v.prepare):.2f} s, median {np.median(v.prepare):.2f} s)"
        )

    def ratio(a: Variant | TorchPeer, b: Variant) -> str:
        return f"{min(a.seconds) / min(b.seconds):.2f}x best, {np.median(a.seconds) / np.median(b.seconds):.2f}x median"

    print(f"token band over the full width (both with the scoring pass): {ratio(full, band)}")
    print(f"logp_old from the step over the scoring pass (both on the band): {ratio(band, step)}")
    print(f"the prompt once per group over G times (both with logp_old from the step): {ratio(step, shared)}")
    print(
        f"the responses packed ({packed.packed:.0%} of the band's slots) over their padded rows (both with the prompt "
        f"once per group): {ratio(shared, packed)}"
    )
    padded_pass, packed_pass = scored_padded.prepare, scored_packed.prepare
    print(
        f"the scoring pass packed over padded (prompt once per group): {min(padded_pass) / min(packed_pass):.2f}x "
        f"best, {np.median(padded_pass) / np.median(packed_pass):.2f}x median"
    )
    print(f"all four levers over none: {ratio(full, packed)}")
    print(f"nsa_jax (all four levers) over the same update in torch eager: {ratio(torch_peer, packed)}")
    print(f"nsa_jax (three levers, responses padded) over torch eager: {ratio(torch_peer, shared)}")
    print(f"nsa_jax on whole rows (logp_old from the step) over torch eager: {ratio(torch_peer, step)}")


if __name__ == "__main__":
    main()
