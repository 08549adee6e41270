"""Host loops that queue multi-device programs keep at most `parallel.MAX_IN_FLIGHT` of them unfinished: with many
more queued, XLA's CPU client deadlocked (one device's half of a program in an all-gather, another device's launch of
it waiting for an admission slot) and aborted the process at the collective timeout. Both loops run in a child
process on 8 CPU devices with that timeout cut to seconds, so a deadlock fails the test instead of hanging the suite,
and count at every dispatch the earlier programs whose outputs are not all ready. Without the pacing (`map_rows` and
`Engine.run_round` dispatching every program before reading one; checked 2026-12-06), the scoring loop aborted in 4
of 4 runs, and the round, which deadlocked in about half the runs of an earlier version, had 16-29 programs
unfinished in 6 of 6."""

import os
import subprocess
import sys

from nsa_jax import parallel

_CHILD = """
import numpy as np, jax, optax
from flax import nnx
from nsa_jax import models, parallel
from nsa_jax.models.tiny import VARIANTS
from nsa_jax.train.core import Engine
from nsa_jax.train.core.engine import Round
from nsa_jax.train.core.scoring import make_scorer
from nsa_jax.train.sft.trainer import nll_loss
mesh = parallel.make_mesh()
assert len(jax.devices()) == 8
cfg = VARIANTS["tiny"]
model = parallel.shard_model(models.init_model(cfg, 0), mesh)
ids = np.random.default_rng(0).integers(0, cfg.vocab_size, (100 * 8, 32)).astype(np.int32)
ones = np.ones_like(ids)

def counted(fn, outputs, most):
    def call(*args):
        unfinished = sum(not all(x.is_ready() for x in jax.tree.leaves(out)) for out in outputs)
        most[0] = max(most[0], unfinished)
        outputs.append(fn(*args))
        return outputs[-1]
    return call

# 100 chunks of 8 rows through the scorer: each chunk's program gathers the FSDP-sharded weights.
most = [0]
graphdef, params = nnx.split(model, nnx.Param)
score = make_scorer(graphdef, chunk_size=64)
one = counted(lambda p, a, b, c: score(p, {"input_ids": a, "attention_mask": b, "loss_mask": c}), [], most)
logp = parallel.map_rows(one, params, [ids, ones, ones], rows=8, mesh=mesh)
assert logp.shape == (800, 32) and (logp <= 0).all() and (logp < 0).mean() > 0.9
print("map_rows", most[0], flush=True)

# A round of 100 optimiser steps, each on the state the last one left.
most = [0]
engine = Engine(model, mesh, lambda m, b, r: nll_loss(m, b, r, chunk_size=64), tx=optax.sgd(1e-3))
engine.step = counted(engine.step, [], most)
rows = np.split(np.arange(800), 100)
batches = [{"input_ids": ids[r], "attention_mask": ones[r], "loss_mask": ones[r]} for r in rows]
metrics = engine.run_round(Round(batches))
assert np.isfinite(metrics["loss"]), metrics
print("run_round", most[0], flush=True)
"""


def test_loops_of_100_collective_programs_finish_with_few_in_flight():
    flags = " ".join(
        [
            "--xla_force_host_platform_device_count=8",
            "--xla_cpu_collective_call_warn_stuck_timeout_seconds=5",
            "--xla_cpu_collective_call_terminate_timeout_seconds=10",
        ]
    )
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    most = {loop: int(n) for loop, n in (line.split() for line in done.stdout.splitlines())}
    assert set(most) == {"map_rows", "run_round"}, done.stdout
    assert all(0 < n <= parallel.MAX_IN_FLIGHT for n in most.values()), most
