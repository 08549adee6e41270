"""Behaviour of `generate`: stops and masks, bucket edges, group-major samples, determinism, compile count."""

import jax
import numpy as np
import pytest

from nsa_jax import sampling
from nsa_jax.sampling.sampler import _decode, _prefill

PROMPTS = [[5, 9, 2, 33, 17], [12], [7, 7, 3, 60, 22, 1, 9, 50, 31]]


@pytest.fixture(scope="module")
def model(tiny_pair):
    return tiny_pair("llama")[1]


def test_rows_stop_at_a_stop_token_and_are_masked_after(model):
    # ~1/8 of the tokens: about 82% of the rows stop within 12 steps, some do not (all 48 rows stop with probability
    # about 0.82^48, 7e-5; all of 12 rows, 9%)
    stops = tuple(range(8))
    out = sampling.generate(model, PROMPTS, n=16, max_new_tokens=12, key=jax.random.key(0), stop_ids=stops, pad_id=63)
    tokens, mask = np.asarray(out.tokens), np.asarray(out.mask)
    stopped, lengths = np.asarray(out.stopped), np.asarray(out.lengths)
    assert stopped.any() and not stopped.all()
    for row in range(tokens.shape[0]):
        n = lengths[row]
        assert mask[row, :n].all() and not mask[row, n:].any()
        assert (tokens[row, n:] == 63).all()
        assert not np.isin(tokens[row, : n - 1], stops).any()
        assert stopped[row] == (tokens[row, n - 1] in stops)
        assert stopped[row] or n == 12
    assert not np.asarray(out.logprobs)[mask == 0].any() and not np.asarray(out.policy_logprobs)[mask == 0].any()


def test_prompt_of_length_one_and_of_the_maximum_bucket(model, teacher_forced_logits):
    buckets = sampling.Buckets(max_prompt_len=24)
    longest = list(np.arange(24) % 60 + 1)
    out = sampling.generate(
        model, [[4], longest], max_new_tokens=8, key=jax.random.key(0), greedy=True, buckets=buckets
    )
    assert out.prompt_tokens.shape == (2, 24) and out.tokens.shape == (2, 8)
    np.testing.assert_array_equal(out.tokens, teacher_forced_logits(model, out).argmax(-1))
    with pytest.raises(ValueError, match="25 tokens.*maximum prompt length 24"):
        sampling.generate(model, [longest + [1]], max_new_tokens=8, key=jax.random.key(0), buckets=buckets)


def test_samples_are_group_major(model):
    key = jax.random.key(0)
    prompt_ids, _ = sampling.left_pad(PROMPTS, None, width=16)
    greedy = sampling.generate(model, PROMPTS, n=3, max_new_tokens=6, key=key, greedy=True)
    groups = np.asarray(greedy.tokens).reshape(len(PROMPTS), 3, -1)
    assert (groups == groups[:, :1]).all()
    sampled = sampling.generate(model, PROMPTS, n=4, max_new_tokens=6, key=key)
    np.testing.assert_array_equal(sampled.prompt_tokens, np.repeat(prompt_ids, 4, axis=0))
    groups = np.asarray(sampled.tokens).reshape(len(PROMPTS), 4, -1)
    assert all(len({tuple(r) for r in group}) > 1 for group in groups.tolist())


def test_deterministic_given_the_key_and_independent_of_the_other_rows(model):
    def run(prompts, seed):
        return np.asarray(sampling.generate(model, prompts, n=4, max_new_tokens=6, key=jax.random.key(seed)).tokens)

    first = run(PROMPTS, 0)
    np.testing.assert_array_equal(first, run(PROMPTS, 0))
    assert (first != run(PROMPTS, 1)).any()
    np.testing.assert_array_equal(first[:4], run(PROMPTS[:1] * 3, 0)[:4])


def test_twenty_calls_compile_once_per_bucket(model):
    before = _prefill._cache_size(), _decode._cache_size()
    rng = np.random.default_rng(0)
    used = set()
    for call in range(20):
        length = int(rng.integers(1, 41))
        new = int(rng.choice([5, 16]))  # one generation bucket: 16
        prompts = rng.integers(1, 64, size=(3, length)).tolist()
        sampling.generate(model, prompts, max_new_tokens=new, key=jax.random.key(call), temperature=0.5 + call / 20)
        used.add((sampling.Buckets().round_up(length), sampling.Buckets().round_up(new)))
    assert len(used) >= 2
    assert _prefill._cache_size() - before[0] <= len(used)  # one segment per call: one decode program per bucket
    assert _decode._cache_size() - before[1] <= len(used)


def test_bad_arguments_name_what_is_wrong(model):
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        sampling.generate(model, PROMPTS, max_new_tokens=0, key=key)
    with pytest.raises(ValueError, match="top_p"):
        sampling.generate(model, PROMPTS, max_new_tokens=4, key=key, top_p=0.0)
    with pytest.raises(ValueError, match="at least one token"):
        sampling.generate(model, [[1, 2], []], max_new_tokens=4, key=key)


def test_left_pad_moves_real_tokens_right_whatever_the_padding_side():
    ids = np.array([[1, 2, 0, 0], [0, 3, 4, 5]])
    mask = np.array([[1, 1, 0, 0], [0, 1, 1, 1]])
    out_ids, out_mask = sampling.left_pad(ids, mask, width=5, pad_id=9)
    np.testing.assert_array_equal(out_ids, [[9, 9, 9, 1, 2], [9, 9, 3, 4, 5]])
    np.testing.assert_array_equal(out_mask, [[0, 0, 0, 1, 1], [0, 0, 1, 1, 1]])
    list_ids, list_mask = sampling.left_pad([[1, 2], [3, 4, 5]], None, width=5, pad_id=9)
    np.testing.assert_array_equal(list_ids, out_ids)
    np.testing.assert_array_equal(list_mask, out_mask)
    with pytest.raises(ValueError, match="shorter than the longest prompt"):
        sampling.left_pad(ids, mask, width=2)


def test_buckets_round_up():
    pow2 = sampling.Buckets()
    assert [pow2.round_up(n) for n in (1, 16, 17, 100)] == [16, 16, 32, 128]
    assert pow2.round_up(100, cap=100) == 100
    explicit = sampling.Buckets(sizes=(8, 24, 64))
    assert [explicit.round_up(n) for n in (1, 9, 64, 65)] == [8, 24, 64, 65]
    with pytest.raises(ValueError, match="ascending"):
        sampling.Buckets(sizes=(24, 8))


def test_generation_config_eos_ids_stop_generation(tiny_pair, tmp_path):
    """An instruct checkpoint ends its turn with ids from generation_config.json, not config.json: generation stops
    there too (and config.json written back keeps its own eos_token_id)."""
    from nsa_jax import models

    _, model = tiny_pair("llama")
    free = sampling.generate(model, PROMPTS, max_new_tokens=12, key=jax.random.key(0), greedy=True)
    end_of_turn = int(np.asarray(free.tokens)[0, 4])  # a token row 0 emits mid-way when nothing stops it
    models.save_pretrained(model, tmp_path / "ckpt")
    (tmp_path / "ckpt" / "generation_config.json").write_text(f'{{"eos_token_id": [{end_of_turn}]}}')
    loaded = models.from_pretrained(tmp_path / "ckpt")
    assert end_of_turn in loaded.config.eos_ids
    out = sampling.generate(loaded, PROMPTS, max_new_tokens=12, key=jax.random.key(0), greedy=True)
    tokens, lengths = np.asarray(out.tokens), np.asarray(out.lengths)
    assert bool(out.stopped[0]) and lengths[0] == 5 and tokens[0, 4] == end_of_turn
    np.testing.assert_array_equal(tokens[0, :4], np.asarray(free.tokens)[0, :4])
    assert models.load_config(tmp_path / "ckpt", stop_token_ids=()).eos_ids == model.config.eos_ids
