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


def np_two_stage_draw(uniform: np.ndarray, logprobs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The draw `sample_tokens` documents, in float64: the vocabulary in blocks of 2^ceil(log2(sqrt(V))) tokens,
    uniform[:, 0] picks the first block whose running mass exceeds it times the total, uniform[:, 1] the first token
    of that block whose running mass exceeds it times the block's. Returns (tokens, near): near where a target lies
    within 1e-6 (relative) of a running total, so float32 sums may pick the neighbour."""
    vocab = logprobs.shape[-1]
    block = 2 ** int(np.ceil(np.log2(np.sqrt(vocab))))
    probs = np.exp(logprobs.astype(np.float64))
    probs = np.pad(probs, ((0, 0), (0, -vocab % block))).reshape(len(probs), -1, block)
    tokens, near = [], []
    for u, blocks in zip(uniform.astype(np.float64), probs, strict=True):
        upto = np.cumsum(blocks.sum(-1))
        chosen = np.searchsorted(upto, u[0] * upto[-1], side="right")
        within = np.cumsum(blocks[chosen])
        offset = np.searchsorted(within, u[1] * within[-1], side="right")
        tokens.append(chosen * block + offset)
        near.append(np.abs(upto / upto[-1] - u[0]).min() < 1e-6 or np.abs(within / within[-1] - u[1]).min() < 1e-6)
    return np.array(tokens), np.array(near)


def assert_same_draws(got: np.ndarray, uniform: np.ndarray, logprobs: np.ndarray) -> None:
    """got equals the float64 reference's tokens, or where a target is that close to a boundary, a token of positive
    probability next to it."""
    expected, near = np_two_stage_draw(uniform, logprobs)
    np.testing.assert_array_equal(got[~near], expected[~near])
    assert (np.abs(got[near] - expected[near]) <= 1).all()
    assert np.isfinite(logprobs[np.arange(len(got)), got]).all(), "a token of probability 0"


def row_uniforms(keys: jax.Array) -> np.ndarray:
    """The two uniforms `sample_tokens` draws from each row's key."""
    return np.asarray(jax.vmap(lambda key: jax.random.uniform(key, (2,)))(keys))


def test_sampled_tokens_are_the_two_stage_inverse_cdf_of_their_uniforms():
    """For fixed keys the sampler picks, row by row, the token a float64 numpy inverse CDF picks for the row key's
    uniforms, over the filtered distribution (a vocabulary that is not a multiple of the search's block)."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(64, 300)).astype(np.float32) * 3
    keys = jax.random.split(jax.random.key(11), 64)
    params = sampling.SamplingParams.create(temperature=0.8, top_k=50)
    token, behaviour, _ = jax.jit(sampling.sample_tokens, static_argnames=("greedy", "truncate"))(
        keys, logits, params, greedy=False, truncate=True
    )
    ref = np_filtered_logprobs(logits, temperature=0.8, top_k=50)
    token = np.asarray(token)
    assert_same_draws(token, row_uniforms(keys), ref)
    assert len(set(token.tolist())) > 20  # the rows' draws differ
    np.testing.assert_allclose(behaviour, ref[np.arange(64), token], rtol=1e-5, atol=1e-5)


def test_inverse_cdf_at_the_edges():
    """Uniforms 0 and just below 1 in either stage, excluded tokens at the start, the end and the 512-token blocks'
    boundaries, a 152k vocabulary and a NaN row: the float64 reference's token, never one of probability 0, always
    a valid id."""
    vocab = 151936
    logp = np.full((6, vocab), -np.inf, np.float32)
    logp[0, [0, 1]] = np.log(0.5)  # the first two tokens
    logp[1, [vocab - 1]] = 0.0  # all the mass on the last token
    logp[2, [511, 512, 1023, 1024]] = np.log(0.25)  # either side of two block boundaries
    logp[3] = np.log(1.0 / vocab)  # uniform over the whole vocabulary
    logp[4, 7] = 0.0
    logp[5] = np.nan
    search = jax.jit(sampling.filters.inverse_cdf)
    below_one = np.nextafter(np.float32(1), np.float32(0))
    for pair in [(0.0, 0.0), (0.3, 0.9), (0.5, 0.5), (0.7500001, 0.25), (below_one, below_one), (0.0, below_one)]:
        u = np.tile(np.array(pair, np.float32), (6, 1))
        got = np.asarray(search(u, logp))
        assert ((got >= 0) & (got < vocab)).all(), pair
        assert_same_draws(got[:5], u[:5], logp[:5])
        assert got[1] == vocab - 1 and got[4] == 7


def test_tail_tokens_far_below_a_float32_uniforms_step_are_drawn_in_their_intervals():
    """One token holds 1 - 1e-3 of a 152k vocabulary and each other token 6.6e-9, 0.06 of a float32 uniform's 2^-23
    step: a single uniform over the whole vocabulary could reach only about 6% of them. With the two stages, the
    uniforms at the middle of a tail token's block interval and of its interval within the block draw that token,
    for every token tried outside the likely token's block (the midpoints computed in float64, rounded to float32)."""
    vocab = 151936
    probs = np.full(vocab, 1e-3 / (vocab - 1))
    probs[70000] = 1 - 1e-3
    logp = np.log(probs).astype(np.float32)
    block = 512
    blocks = np.pad(np.exp(logp.astype(np.float64)), (0, -vocab % block)).reshape(-1, block)
    upto = np.cumsum(blocks.sum(-1))
    # Not in the likely token's block, where a token's step is 2^-23 of that block's mass, about the row's.
    others = np.setdiff1d(np.arange(vocab), np.arange(70000 // block * block, (70000 // block + 1) * block))
    tried = np.random.default_rng(0).choice(others, 64, replace=False)
    uniform = []
    for token in tried:
        b, i = divmod(token, block)
        within = np.cumsum(blocks[b])
        start_b = upto[b - 1] if b else 0.0
        start_i = within[i - 1] if i else 0.0
        uniform.append([(start_b + upto[b]) / 2 / upto[-1], (start_i + within[i]) / 2 / within[-1]])
    got = np.asarray(jax.jit(sampling.filters.inverse_cdf)(np.array(uniform, np.float32), np.tile(logp, (64, 1))))
    np.testing.assert_array_equal(got, tried)


def test_draws_of_a_long_tailed_distribution_have_its_frequencies():
    """200k draws from a Zipf-like distribution over 1000 tokens, 40 of them excluded: a chi-square test against
    the probabilities (pooling the cells expected under 5 draws), and no excluded token ever drawn."""
    vocab, draws = 1000, 25_000
    logits = -1.2 * np.log(np.arange(1, vocab + 1, dtype=np.float32))
    logits[np.random.default_rng(0).choice(vocab, 40, replace=False)] = -np.inf
    probs = np.exp(np_filtered_logprobs(logits[None])[0])
    params = sampling.SamplingParams.create()
    draw = jax.jit(
        lambda key: sampling.sample_tokens(
            jax.random.split(key, draws), np.broadcast_to(logits, (draws, vocab)), params, greedy=False, truncate=False
        )[0]
    )
    tokens = np.concatenate([np.asarray(draw(jax.random.key(i))) for i in range(8)])
    assert np.isfinite(logits[tokens]).all()
    observed = np.bincount(tokens, minlength=vocab)
    expected = probs * tokens.size
    rare = expected < 5  # pooled (none at these counts, but the cells stay valid for any change of them)
    cells = probs > 0
    f_obs = np.append(observed[cells & ~rare], observed[cells & rare].sum())
    f_exp = np.append(expected[cells & ~rare], expected[cells & rare].sum())
    if not rare[cells].any():
        f_obs, f_exp = f_obs[:-1], f_exp[:-1]
    assert stats.chisquare(f_obs, f_exp).pvalue > 1e-3


def test_first_argmax_is_numpys_argmax():
    """The first index of the maximum, with ties, -inf entries and a NaN row (the last index, a valid token)."""
    x = np.array([[1.0, 3.0, 3.0, 0.0], [-np.inf, -np.inf, 2.0, 2.0], [5.0, -1.0, 5.0, 5.0], [np.nan] * 4], np.float32)
    got = np.asarray(jax.jit(sampling.filters.first_argmax)(x))
    np.testing.assert_array_equal(got[:3], np.argmax(x[:3], axis=-1))
    assert got[3] == 3
    big = np.random.default_rng(0).normal(size=(32, 1000)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(jax.jit(sampling.filters.first_argmax)(big)), np.argmax(big, axis=-1))
