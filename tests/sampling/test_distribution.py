"""The sampler draws from the distribution it claims, and reports its log-probs and the policy's exactly.

References are computed independently in numpy (float64) from the logits of a teacher-forced forward pass.
"""

import jax
import numpy as np
import pytest
from scipy import stats

from nsa_jax import sampling

PROMPTS = [[5, 9, 2, 33, 17, 8, 41], [12, 3]]


def np_filtered_logprobs(
    logits: np.ndarray, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0
) -> np.ndarray:
    """[..., V] logits -> log-probs of the tempered, truncated distribution (-inf outside it), from the definitions."""
    z = logits.astype(np.float64) / temperature
    if top_k:
        kth = -np.sort(-z, axis=-1)[..., top_k - 1 : top_k]
        z = np.where(z >= kth, z, -np.inf)
    if top_p < 1.0:
        probs = np.exp(z - z.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        order = np.argsort(-probs, axis=-1, kind="stable")
        cum = np.cumsum(np.take_along_axis(probs, order, axis=-1), axis=-1)
        n_keep = np.argmax(cum >= top_p, axis=-1)[..., None] + 1  # the smallest prefix with mass >= top_p
        ranks = np.argsort(order, axis=-1)
        z = np.where(ranks < n_keep, z, -np.inf)
    if min_p > 0.0:
        probs = np.exp(z - z.max(axis=-1, keepdims=True))
        z = np.where(probs >= min_p, z, -np.inf)  # probs relative to the top token, whose value is 1
    m = z.max(axis=-1, keepdims=True)
    return z - (m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True)))


def np_log_softmax(logits: np.ndarray) -> np.ndarray:
    return np_filtered_logprobs(logits)


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_first_token_frequencies_match_softmax(tiny_pair, teacher_forced_logits, temperature):
    _, model = tiny_pair("llama")
    draws = 4096
    out = sampling.generate(
        model, PROMPTS[:1], n=draws, max_new_tokens=1, key=jax.random.key(7), temperature=temperature
    )
    logits = teacher_forced_logits(model, jax.tree.map(lambda x: x[:1], out))[0, 0]  # [V]
    expected = np.exp(np_filtered_logprobs(logits, temperature)) * draws
    observed = np.bincount(np.asarray(out.tokens[:, 0]), minlength=logits.shape[0])
    rare = expected < 5  # pooled, so every chi-square cell has the expected count the test needs
    f_obs = np.append(observed[~rare], observed[rare].sum())
    f_exp = np.append(expected[~rare], expected[rare].sum())
    assert stats.chisquare(f_obs, f_exp).pvalue > 1e-3


FILTERS = {
    "greedy": {"greedy": True},
    "top_k": {"top_k": 5},
    "top_p": {"top_p": 0.7},
    "min_p": {"min_p": 0.1},
    "all": {"temperature": 0.7, "top_k": 12, "top_p": 0.9, "min_p": 0.05},
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_tokens_and_logprobs_match_teacher_forcing(tiny_pair, teacher_forced_logits, name):
    """Every token lies in the allowed set at its step; logprobs and policy_logprobs equal the references."""
    _, model = tiny_pair("llama")
    kw = FILTERS[name]
    out = sampling.generate(model, PROMPTS, n=16, max_new_tokens=10, key=jax.random.key(3), stop_ids=(7,), **kw)
    logits = teacher_forced_logits(model, out)  # [R, N, V]
    tokens, mask = np.asarray(out.tokens), np.asarray(out.mask).astype(bool)
    policy = np.take_along_axis(np_log_softmax(logits), tokens[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(np.asarray(out.policy_logprobs)[mask], policy[mask], atol=1e-4)
    assert out.logprobs.dtype == out.policy_logprobs.dtype == np.float32
    if kw.get("greedy"):
        np.testing.assert_array_equal(tokens[mask], logits.argmax(axis=-1)[mask])
        assert not np.asarray(out.logprobs).any()
        return
    sampled = np_filtered_logprobs(logits, **kw)  # [R, N, V]
    allowed = np.isfinite(sampled)
    emitted = np.take_along_axis(allowed, tokens[..., None], axis=-1)[..., 0]
    assert emitted[mask].all(), f"{name} emitted a token outside its allowed set"
    assert (allowed.sum(-1)[mask] < logits.shape[-1]).all() or name == "min_p"  # the filters do truncate
    behaviour = np.take_along_axis(sampled, tokens[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(np.asarray(out.logprobs)[mask], behaviour[mask], atol=1e-4)
    assert len(set(map(tuple, tokens.tolist()))) > 1  # it samples: not every row is the same


def test_filter_logits_keeps_the_top_token_and_ties():
    """top-p below the top token's mass keeps it alone; equal logits at a cut-off are kept together."""
    logits = np.log(np.array([[0.5, 0.2, 0.2, 0.1]], np.float32))
    filter_jit = jax.jit(sampling.filter_logits)  # one compile for every filter setting: they are traced

    def kept(**kw):
        return np.isfinite(filter_jit(logits, sampling.SamplingParams.create(**kw)))[0].tolist()

    assert kept(top_p=0.3) == [True, False, False, False]
    assert kept(top_k=2) == [True, True, True, False]
    assert kept(top_p=0.65) == [True, True, True, False]
    assert kept(min_p=0.3) == [True, True, True, False]
    assert kept(min_p=0.5) == [True, False, False, False]
    assert kept() == [True] * 4


def test_sampled_tokens_are_jax_categoricals_draw():
    """For fixed keys the sampler's Gumbel-max draw picks the token jax.random.categorical picks from the same
    filtered log-probs (the implementation before issue 17's split of its argmax), row by row."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(64, 300)).astype(np.float32) * 3
    keys = jax.random.split(jax.random.key(11), 64)
    params = sampling.SamplingParams.create(temperature=0.8, top_k=50)
    token, behaviour, _ = jax.jit(sampling.sample_tokens, static_argnames=("greedy", "truncate"))(
        keys, logits, params, greedy=False, truncate=True
    )
    filtered = jax.nn.log_softmax(sampling.filter_logits(logits, params), axis=-1)
    expected = jax.vmap(jax.random.categorical)(keys, filtered)
    np.testing.assert_array_equal(np.asarray(token), np.asarray(expected))
    ref = np_filtered_logprobs(logits, temperature=0.8, top_k=50)
    np.testing.assert_allclose(behaviour, ref[np.arange(64), np.asarray(expected)], rtol=1e-5, atol=1e-5)


def test_first_argmax_is_numpys_argmax():
    """The first index of the maximum, with ties, -inf entries and a NaN row (the last index, a valid token)."""
    x = np.array([[1.0, 3.0, 3.0, 0.0], [-np.inf, -np.inf, 2.0, 2.0], [5.0, -1.0, 5.0, 5.0], [np.nan] * 4], np.float32)
    got = np.asarray(jax.jit(sampling.filters.first_argmax)(x))
    np.testing.assert_array_equal(got[:3], np.argmax(x[:3], axis=-1))
    assert got[3] == 3
    big = np.random.default_rng(0).normal(size=(32, 1000)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(jax.jit(sampling.filters.first_argmax)(big)), np.argmax(big, axis=-1))
