"""Test helpers: random group-major batches and a one-compile way to call library functions."""

import jax
import numpy as np


def random_batch(seed, q, g, t, binary=True):
    """A group-major batch ``(logp, logp_old, logp_ref, mask, rewards)`` in float32, with random response lengths
    (some empty), holes in the mask, and policy log-probs off the behaviour ones by enough to hit both clips."""
    rng = np.random.default_rng(seed)
    b = q * g
    logp_old = -rng.exponential(1.0, (b, t))
    logp = logp_old + rng.normal(0.0, 0.3, (b, t))
    logp_ref = logp_old + rng.normal(0.0, 0.2, (b, t))
    lengths = rng.integers(0, t + 1, b)
    mask = (np.arange(t)[None, :] < lengths[:, None]) & (rng.random((b, t)) > 0.1)
    rewards = rng.integers(0, 2, b).astype(np.float64) if binary else rng.random(b)
    return tuple(np.asarray(x, np.float32) for x in (logp, logp_old, logp_ref, mask, rewards))


def _split(args):
    arrays = [a for a in args if isinstance(a, (np.ndarray, jax.Array))]
    slots = [isinstance(a, (np.ndarray, jax.Array)) for a in args]
    return arrays, slots


def _merge(arrays, slots, args):
    it = iter(arrays)
    return [next(it) if is_array else a for is_array, a in zip(slots, args)]


def jit_call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` under one ``jax.jit``: array positionals are traced, everything else is static.
    Eager dispatch compiles every primitive separately, which is several times slower for these small graphs."""
    arrays, slots = _split(args)
    return jax.jit(lambda *arrs: fn(*_merge(arrs, slots, args), **kwargs))(*arrays)


def loss_value_and_grad(fn, logp, *args, **kwargs):
    """``(value, d value / d logp, metrics)`` of a ``(LossTerm, metrics)`` loss ``fn(logp, *args, **kwargs)``."""
    arrays, slots = _split(args)

    def value(lp, *arrs):
        term, metrics = fn(lp, *_merge(arrs, slots, args), **kwargs)
        return term.value, metrics

    (val, metrics), grad = jax.jit(jax.value_and_grad(value, has_aux=True))(np.asarray(logp), *arrays)
    return float(val), np.asarray(grad), metrics
