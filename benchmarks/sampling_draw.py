"""The cost of drawing one step's tokens: `sampling.sample_tokens` (two uniforms a row, an inverse-CDF search over the
vocabulary) against Gumbel-max draws (one noise value a token), in the same rounds.

    python benchmarks/sampling_draw.py [--shapes 128x512 32x512 64x151936] [--rounds 3]

Each form takes a step's logits [rows, vocab] and returns what the sampler needs (token, behaviour log-prob, policy
log-prob), temperature 1 without truncation, as the decode benchmark samples. "Gumbel-max" is the sampler's draw
before (the peer): `jax.random.gumbel` noise added to the filtered log-probs and its argmax taken as a max and then
the first index holding it (`filters.first_argmax`), the tokens of `jax.random.categorical`, which is "categorical"
(XLA CPU fuses its noise into a slower (value, index) reduction); "argmax, no draw" is the same work without any
randomness (a floor). 128 x 512 is one device's share of `benchmarks/sampling.py`'s batch 256, 64 x 151936 a batch at
Qwen2's vocabulary. The process is pinned to one core (Linux), as each of the command line's CPU devices runs on
one. Prints milliseconds per call (best of the rounds, each the mean of many calls) and Gumbel-max's time over each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["128x512", "32x512", "64x151936"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    import jax
    import jax.numpy as jnp
    import numpy as np

    from nsa_jax import sampling
    from nsa_jax.sampling.filters import first_argmax

    params = sampling.SamplingParams.create()

    def drawn_by(draw):
        def fn(keys, logits):
            policy = jax.nn.log_softmax(logits, axis=-1)
            filtered = jax.nn.log_softmax(sampling.filter_logits(logits, params, truncate=False), axis=-1)
            token = draw(keys, filtered)
            chosen = [jnp.take_along_axis(x, token[:, None], axis=-1)[:, 0] for x in (filtered, policy)]
            return token, *chosen

        return jax.jit(fn)

    def gumbel_max(keys, logp):
        return first_argmax(logp + jax.vmap(lambda key: jax.random.gumbel(key, logp.shape[1:]))(keys))

    forms = {
        "Gumbel-max": drawn_by(gumbel_max),
        "inverse CDF": jax.jit(lambda k, x: sampling.sample_tokens(k, x, params, greedy=False, truncate=False)),
        "categorical": drawn_by(jax.vmap(jax.random.categorical)),
        "argmax, no draw": drawn_by(lambda keys, logp: first_argmax(logp)),
    }
    print(f"jax {jax.__version__}, one core; {args.rounds} rounds")
    for shape in args.shapes:
        rows, vocab = map(int, shape.split("x"))
        logits = jnp.asarray(np.random.default_rng(0).normal(size=(rows, vocab)) * 3, jnp.float32)
        keys = jax.random.split(jax.random.key(1), rows)
        calls = max(5, int(1e8 // (rows * vocab)))
        times: dict[str, list[float]] = {name: [] for name in forms}
        for _ in range(args.rounds):  # alternating rounds, so every form sees the same machine
            for name, fn in forms.items():
                jax.block_until_ready(fn(keys, logits))
                start = time.perf_counter()
                for _ in range(calls):
                    out = fn(keys, logits)
                jax.block_until_ready(out)
                times[name].append((time.perf_counter() - start) / calls)
        best = {name: min(t) for name, t in times.items()}
        peer = best["Gumbel-max"]
        cells = " | ".join(f"{name} {t * 1e3:.3f} ms ({peer / t:.2f}x)" for name, t in best.items())
        print(f"{rows} x {vocab}: {cells}")


if __name__ == "__main__":
    main()
