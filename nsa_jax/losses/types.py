"""The deferred-reduction loss value shared by every loss, and small numeric helpers.

A loss is returned as a ``(total, denom)`` pair rather than a ratio so that micro-batches and data-parallel
shards can be summed first and divided once (ALGORITHMS.md section 0; the same idea as Tunix ``WeightedMetric``
and verl ``agg_loss``).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class LossTerm(NamedTuple):
    """A loss as a sum and a denominator; ``value = total / denom`` (0 when ``denom == 0``).

    A NamedTuple, so it is a JAX pytree: it passes through ``jit``, ``grad(has_aux=True)``, ``lax.scan`` and
    ``psum`` unchanged. ``a + b`` adds totals and denominators (not tuple concatenation), so summing the LossTerms
    of micro-batches or devices and reading ``.value`` gives the full-batch loss exactly. The denominator never
    depends on the differentiated log-probs, so gradients of per-shard ``total`` divided by the global ``denom``
    also equal the full-batch gradient.
    """

    total: jax.Array  # [] float32
    denom: jax.Array  # [] float32

    @property
    def value(self) -> jax.Array:
        return safe_div(self.total, self.denom)

    def __add__(self, other: "LossTerm") -> "LossTerm":
        if not isinstance(other, LossTerm):
            return NotImplemented
        return LossTerm(self.total + other.total, self.denom + other.denom)

    def __radd__(self, other):
        # Lets ``sum(terms)`` start from the integer 0.
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented


def safe_div(num: jax.Array, den: jax.Array) -> jax.Array:
    """``num / den`` where ``den != 0``, else 0; the unused branch is kept finite so gradients stay finite."""
    nonzero = den != 0
    return jnp.where(nonzero, num / jnp.where(nonzero, den, 1.0), 0.0)


def f32(x) -> jax.Array:
    """Cast to float32: every loss does its arithmetic in float32 whatever the input dtype (bf16 in, f32 maths)."""
    return jnp.asarray(x, jnp.float32)


def lookup(registry: dict, name: str, knob: str):
    """Return ``registry[name]`` or raise a ValueError that names the knob, the bad value and the choices."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        raise ValueError(f"{knob}={name!r} is not one of {sorted(registry)}") from None
