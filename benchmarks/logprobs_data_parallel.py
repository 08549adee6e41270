"""Is `losses.token_logprobs` data parallel on the trainers' mesh? Value and gradient for a batch split over the
mesh that `parallel.make_mesh()` builds (8 CPU devices here, Auto axes, the batch on the data-parallel axes) against
the same computation on one device, in the same run; and the collectives the compiled program contains.

On CPU the 8 devices are threads sharing the machine's cores, so a properly split batch takes about the wall time
of one device (the same total work), and a program that gathers the rows onto every device takes several times it.
Run on an idle machine (`uptime`).

    python benchmarks/logprobs_data_parallel.py [--batch 16 --seq 256 --dim 256 --vocab 8192 --chunk 512]
"""

import os

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import argparse
import re
import time

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nsa_jax import losses, parallel


def seconds(fn, *args, repeats: int = 10) -> float:
    """Median wall time of `fn(*args)` after a warm-up call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--chunk", type=int, default=512)
    args = parser.parse_args()
    b, t, d, v = args.batch, args.seq, args.dim, args.vocab
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    hidden = jax.random.normal(k1, (b, t, d))
    unembed = jax.random.normal(k2, (d, v)) / d**0.5
    targets = jax.random.randint(k3, (b, t), 0, v)

    def loss(h, w, y):
        return jnp.sum(losses.token_logprobs(h, w, y, chunk_size=args.chunk))

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    mesh = parallel.make_mesh()
    sharded = (
        jax.device_put(hidden, parallel.batch_sharding(mesh, 3)),
        jax.device_put(unembed, NamedSharding(mesh, P())),
        jax.device_put(targets, parallel.batch_sharding(mesh)),
    )
    one = tuple(jax.device_put(x, jax.devices()[0]) for x in (hidden, unembed, targets))
    text = step.lower(*sharded).compile().as_text()
    print(f"backend {jax.default_backend()}, {len(jax.devices())} devices, mesh {dict(mesh.shape)}")
    print(f"value + gradient of token_logprobs, B x T = {b} x {t}, d = {d}, V = {v}, chunk {args.chunk}")
    for op in ("all-gather", "all-reduce", "reduce-scatter", "all-to-all"):
        shapes = re.findall(rf"= (\S+) {op}\(", text)
        print(f"  {op}: {len(shapes)} {' '.join(shapes[:4])}")
    single, split = seconds(step, *one), seconds(step, *sharded)
    print(f"one device {single * 1e3:.1f} ms, batch split over the mesh {split * 1e3:.1f} ms: {split / single:.2f}x")


if __name__ == "__main__":
    main()
