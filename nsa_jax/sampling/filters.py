"""Turning one step's logits into a sampled token and the two log-probs RL needs.

The filters run in a fixed order, each on the distribution the previous one left: temperature, top-k, top-p,
min-p (the order of transformers' logits warpers). A filtered-out token gets logit -inf, so the log-softmax of the
filtered logits is exactly the distribution sampled from, and its value at the sampled token is the behaviour
log-prob. The policy log-prob is the log-softmax of the raw logits (temperature 1, no truncation): importance
ratios against the trainer's policy need that one, sampler/trainer mismatch corrections need both.

The filter strengths are traced values, so changing them never recompiles; only two switches are static: greedy,
and whether any truncation runs at all (it costs a sort of the vocabulary per step).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """Traced filter strengths, each a [] array.

    temperature > 0; top_k: keep the k most likely tokens (0: off); top_p: keep the smallest set of most likely
    tokens whose probability sums to at least top_p (1: off); min_p: keep tokens at least min_p times as likely
    as the top token (0: off).
    """

    temperature: jax.Array
    top_k: jax.Array
    top_p: jax.Array
    min_p: jax.Array

    @classmethod
    def create(cls, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0) -> SamplingParams:
        f32 = jnp.float32
        return cls(
            jnp.asarray(temperature, f32),
            jnp.asarray(top_k, jnp.int32),
            jnp.asarray(top_p, f32),
            jnp.asarray(min_p, f32),
        )


def filter_logits(logits: jax.Array, params: SamplingParams, *, truncate: bool = True) -> jax.Array:
    """logits [B, V] float32 -> logits of the distribution sampled from, [B, V], -inf where filtered out.

    All three truncations become one cut-off rank in the descending order (one sort serves top-k and top-p), then
    one logit threshold. The top token is always kept. Tokens tied with the last kept one are kept too, so a
    filter can keep slightly more than its nominal set but never drops a token as likely as a kept one.
    `truncate=False` skips the sort when the caller knows every filter is off.
    """
    out = logits / params.temperature
    if not truncate:
        return out
    vocab = out.shape[-1]
    desc = jnp.sort(out, axis=-1)[:, ::-1]  # [B, V]
    rank = jnp.arange(vocab)
    k = jnp.where(params.top_k > 0, jnp.minimum(params.top_k, vocab), vocab)  # []
    desc_probs = jax.nn.softmax(jnp.where(rank < k, desc, -jnp.inf), axis=-1)  # [B, V] after top-k, in order
    mass_before = jnp.cumsum(desc_probs, axis=-1) - desc_probs  # exclusive prefix sums; mass_before[:, 0] = 0
    nucleus = jnp.sum(mass_before < params.top_p, axis=-1)  # [B] >= 1
    keep = jnp.where(params.top_p >= 1.0, k, jnp.minimum(nucleus, k))  # [B]
    threshold = jnp.take_along_axis(desc, keep[:, None] - 1, axis=-1)  # [B, 1]
    # min-p: p_i >= min_p * p_max  <=>  z_i >= z_max + log(min_p), whatever the normaliser (log 0 = -inf: off).
    threshold = jnp.maximum(threshold, desc[:, :1] + jnp.log(params.min_p))
    return jnp.where(out >= threshold, out, -jnp.inf)


def sample_tokens(
    keys: jax.Array, logits: jax.Array, params: SamplingParams, *, greedy: bool, truncate: bool
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """keys [B] (one per row), logits [B, V] -> (token [B] int32, behaviour log-prob [B], policy log-prob [B]).

    Greedy takes the argmax; its sampled distribution is a point mass, so the behaviour log-prob is 0.
    One key per row makes a row's sample depend only on its own key, not on the batch around it: padding the
    batch for sharding, or sharding it, leaves every real row's tokens unchanged.
    """
    policy = jax.nn.log_softmax(logits, axis=-1)  # [B, V]
    if greedy:
        token = first_argmax(logits)
        behaviour = jnp.zeros(token.shape, jnp.float32)
    else:
        filtered = jax.nn.log_softmax(filter_logits(logits, params, truncate=truncate), axis=-1)
        uniform = jax.vmap(lambda key: jax.random.uniform(key, (2,)))(keys)  # two draws a row, not one a token
        token = inverse_cdf(uniform, filtered)
        behaviour = jnp.take_along_axis(filtered, token[:, None], axis=-1)[:, 0]
    return token, behaviour, jnp.take_along_axis(policy, token[:, None], axis=-1)[:, 0]


def inverse_cdf(uniform: jax.Array, logprobs: jax.Array) -> jax.Array:
    """A token drawn from softmax(logprobs) by inverting its cumulative distribution: uniform [B, 2] in [0, 1),
    logprobs [B, V] (-inf for excluded tokens) -> token [B] int32.

    The vocabulary is taken in blocks of about sqrt(V) tokens (a power of two); uniform[:, 0] picks a block from the
    blocks' masses (the first whose running mass exceeds it times the total), uniform[:, 1] a token of that block
    from its tokens' masses, in vocabulary order. That is exactly a draw from the distribution (a block with its
    probability, then a token with its probability given the block), with one search of O(V) work and no sort.

    It takes two random numbers a row where a Gumbel-max draw (`jax.random.categorical`) takes one a token: that
    [B, V] noise (Threefry bits and two logarithms an entry) was most of the draw's cost on CPU (0.374 -> 0.120 ms
    at [128, 512] on one core of a 2-core EPYC, `python benchmarks/sampling_draw.py`), and at a 152k vocabulary it
    is B x 152k draws a step. Two stages, not one uniform over the whole vocabulary: a float32 uniform has 2^23
    values, and one search over 152k tokens would round every token's probability to multiples of 2^-23 (1.2e-7) of
    the row, where the tail's tokens sit. This way a block's probability is resolved to 2^-23 of the row and a
    token's to 2^-23 of its block's mass (as coarse as one uniform would make it only for the tokens that share a
    block with a likely one). A token of probability 0 is never drawn (should rounding put a target past a running
    total, the last token of positive probability is taken); a NaN row gets token 0, a valid id.
    """
    rows, vocab = logprobs.shape
    block = 1 << max(0, math.ceil(math.log2(math.sqrt(vocab))))
    probs = jnp.exp(logprobs)
    if vocab % block:
        probs = jnp.pad(probs, ((0, 0), (0, block - vocab % block)))
    blocks = probs.reshape(rows, -1, block)  # [B, nb, block]
    chosen = _search(uniform[:, 0].astype(jnp.float32), jnp.sum(blocks, axis=-1))
    inside = jnp.take_along_axis(blocks, chosen[:, None, None], axis=1)[:, 0]  # [B, block]
    offset = _search(uniform[:, 1].astype(jnp.float32), inside)
    return jnp.clip(chosen * block + offset, 0, vocab - 1).astype(jnp.int32)


def _search(uniform: jax.Array, mass: jax.Array) -> jax.Array:
    """uniform [B], mass [B, n] >= 0 -> [B] int32: the first index whose running mass exceeds uniform x the row's
    total, among those of positive mass (the last of positive mass where rounding leaves none; 0 for a row of NaN)."""
    upto = jnp.cumsum(mass, axis=-1)
    index = jnp.arange(mass.shape[-1])
    positive = mass > 0
    past = (upto > (uniform * upto[:, -1])[:, None]) & positive
    first = jnp.min(jnp.where(past, index, mass.shape[-1]), axis=-1)
    last_positive = jnp.max(jnp.where(positive, index, 0), axis=-1)
    return jnp.minimum(first, last_positive).astype(jnp.int32)


def first_argmax(x: jax.Array) -> jax.Array:
    """jnp.argmax(x, axis=-1) for x [B, V] as int32, computed as the max and then the first index equal to it (two
    plain reductions, which XLA CPU vectorises, instead of one over (value, index) pairs). A row without a
    maximum (NaN) gets the last index, a valid token."""
    top = jnp.max(x, axis=-1, keepdims=True)
    index = jnp.min(jnp.where(x == top, jnp.arange(x.shape[-1], dtype=jnp.int32), x.shape[-1] - 1), axis=-1)
    return index.astype(jnp.int32)
