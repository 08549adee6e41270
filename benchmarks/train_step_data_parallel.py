"""Is the RL update data parallel on the trainers' mesh? The jitted train step and the scoring pass (`logp_old`) of
the miniature's rollout on the mesh `parallel.make_mesh()` builds (8 CPU devices here, Auto axes, parameters FSDP
over "fsdp", the batch over the data-parallel axes) against the same on one device, in the same run, with the
collectives each compiled program contains; and the same on the mesh without the layers' batch constraints
(`models.layers.batch_split`), the behaviour before them.

On CPU the 8 devices are threads sharing the machine's cores, so a properly split batch takes about the wall time
of one device (the same total work) and a program that gathers activations onto every device takes several times
it. Run on an idle machine (`uptime`).

    python benchmarks/train_step_data_parallel.py [--variant tiny-wide --vocab 8192 --prompts 32 --group 8]
        [--share-prompt]

`--share-prompt` runs the update as the RL presets do (`rl.share_prompt`: each group's prompt computed once, the
responses packed), the scoring pass too; with fewer prompts than devices (`--prompts 4 --group 16`) the prompts'
part of the forward cannot split over the prompts.
"""

from __future__ import annotations

import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # rl_update's rollout and config
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # for `configs`

import argparse
import re
import time

import jax
import rl_update

from nsa_jax import models, parallel
from nsa_jax.models import layers
from nsa_jax.models.tiny import VARIANTS
from nsa_jax.train.core.scoring import make_scorer
from nsa_jax.train.rl import RLUpdate, make_engine

COLLECTIVES = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all")
SCORED = ("input_ids", "attention_mask", "loss_mask")
SHARED = ("prompt_ids", "prompt_mask", "packed_width")  # a batch with its prompts set apart


def collectives(text: str) -> str:
    """Count and largest operand of each collective in a compiled program's text (a combined tuple: its largest part)."""
    out = []
    for op in COLLECTIVES:
        shapes = re.findall(rf"= (\([^)]*\)|\S+) {op}(?:-start)?\(", text)
        if shapes:
            elements = [max(hlo_elements(s) for s in re.findall(r"\w+\[[\d,]*\]", shape)) for shape in shapes]
            out.append(f"{op} x{len(shapes)} (largest {max(elements):,} elements)")
    return ", ".join(out) or "none"


def hlo_elements(shape: str) -> int:
    """Elements of an HLO shape such as `f32[256,96]`."""
    dims = shape[shape.index("[") + 1 : -1]
    size = 1
    for d in filter(None, dims.split(",")):
        size *= int(d)
    return size


def seconds(fn, repeats: int) -> float:
    """Median wall time of `fn()` after a warm-up call."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def measure(args: argparse.Namespace, mesh) -> tuple[float, float, str, str]:
    """(train step s, scoring s, train step collectives, scoring collectives) on `mesh`."""
    cfg = VARIANTS[args.variant].replace(vocab_size=args.vocab)
    model = models.init_model(cfg, seed=0)
    config = rl_update.config(args, share_prompt=args.share_prompt)
    engine = make_engine(config, model, mesh, total_steps=args.repeats + 2)
    update = RLUpdate(config, engine)
    host = update.round(rl_update.make_rollout(args, args.vocab).batch(), engine, seed=0).batches[0]
    step, batch = engine.prepared_step(host)
    step_text = step.lower(engine.state, batch).compile().as_text()

    def train():
        engine.state, metrics = step(engine.state, batch)  # the step donates the state: keep the new one
        return metrics

    # Uncached (make_scorer shares one jit per model graph), so each mesh and layer variant traces its own.
    group = args.group if args.share_prompt else 1
    scorer = make_scorer.__wrapped__(engine.graphdef, chunk_size=config.logprob_chunk_size, group_size=group)
    scored = {k: batch[k] for k in SCORED + SHARED if k in batch}
    score_text = scorer.lower(engine.state.params, scored).compile().as_text()
    return (
        seconds(train, args.repeats),
        seconds(lambda: scorer(engine.state.params, scored), args.repeats),
        collectives(step_text),
        collectives(score_text),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="tiny-wide", choices=sorted(VARIANTS))
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--share-prompt", action="store_true", help="each group's prompt computed once")
    rl_update.add_rollout_args(parser, repeats=3)
    args = parser.parse_args()
    mesh = parallel.make_mesh()
    print(
        f"backend {jax.default_backend()}, {len(jax.devices())} devices, mesh {dict(mesh.shape)}; {args.variant} "
        f"with vocab {args.vocab}, {args.method} update of {args.prompts} x {args.group} rows"
        + (", prompts shared" if args.share_prompt else "")
    )
    one = measure(args, parallel.make_mesh(devices=jax.devices()[:1]))
    split = measure(args, mesh)
    constrain = layers.batch_split
    layers.batch_split = lambda x: x  # the layers before their batch constraints
    try:
        unconstrained = measure(args, mesh)
    finally:
        layers.batch_split = constrain
    for name, (step_s, score_s, step_c, score_c) in (
        ("one device", one),
        ("mesh", split),
        ("mesh, no batch constraints", unconstrained),
    ):
        print(f"{name}: train step {step_s * 1e3:.0f} ms, scoring {score_s * 1e3:.0f} ms")
        print(f"    step collectives: {step_c}\n    scoring collectives: {score_c}")
    for name, (step_s, score_s, *_) in (("mesh", split), ("mesh, no batch constraints", unconstrained)):
        print(f"{name} / one device: train step {step_s / one[0]:.2f}x, scoring {score_s / one[1]:.2f}x")


if __name__ == "__main__":
    main()
