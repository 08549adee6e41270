"""Decoding in segments (the KV cache grown to the filled length between them, finished rows dropped) gives the
result of decoding in one segment over the whole cache: the same tokens for the same key, the same masks and
stops, the same log-probs within float tolerance; without a mesh, on a mesh with Auto axes and on Explicit axes."""

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import AxisType

from nsa_jax import parallel, sampling
from nsa_jax.sampling import sampler

PROMPTS = [[5, 9, 2, 33, 17], [12], [7, 7, 3, 60, 22, 1, 9, 50, 31], [40, 2, 19]]
ONE_SEGMENT = sampling.Buckets(cache_block=64)
SEGMENTS_OF_4 = sampling.Buckets(cache_block=4)


def test_segment_ends():
    assert sampling.Buckets().segment_ends(64) == (64,)
    assert sampling.Buckets().segment_ends(256) == (64, 128, 192, 256)
    assert sampling.Buckets().segment_ends(4096) == tuple(range(512, 4097, 512))  # at most 8 segments
    assert sampling.Buckets(cache_block=48).segment_ends(100) == (48, 96, 100)
    with pytest.raises(ValueError, match="cache_block"):
        sampling.Buckets(cache_block=0)


@pytest.mark.parametrize("layout", ["no-mesh", "auto-data8", "explicit-2x2x2"])
def test_segments_and_dropped_rows_equal_one_segment(tiny_pair, layout, monkeypatch):
    _, model = tiny_pair("llama")
    # 5 of the 64 tokens stop a row: 14 of the 16 rows stop early, at 1 to 17 tokens, and 2 run to the end.
    kw = {"n": 4, "max_new_tokens": 22, "key": jax.random.key(2), "top_p": 0.95, "stop_ids": tuple(range(5))}
    expected = sampling.generate(model, PROMPTS, buckets=ONE_SEGMENT, **kw)

    kept = []  # the carry's row count after each drop
    keep_rows = sampler._keep_rows
    monkeypatch.setattr(sampler, "_keep_rows", lambda p, c, keep: kept.append(len(keep)) or keep_rows(p, c, keep))
    grown = []
    grow = sampler._grow
    monkeypatch.setattr(sampler, "_grow", lambda c, slots: grown.append(slots) or grow(c, slots))
    if layout == "no-mesh":
        out = sampling.generate(model, PROMPTS, buckets=SEGMENTS_OF_4, **kw)
    else:
        if layout == "auto-data8":
            mesh = parallel.make_mesh(data=8, fsdp=1)
        else:
            mesh = jax.make_mesh((2, 2, 2), parallel.MESH_AXES, axis_types=(AxisType.Explicit,) * 3)
        copy = nnx.clone(model)
        parallel.shard_model(copy, mesh)
        out = sampling.generate(copy, PROMPTS, buckets=SEGMENTS_OF_4, mesh=mesh, **kw)

    # Prompt bucket 16, then 4 more slots a segment, until every row has stopped.
    assert len(grown) >= 2 and grown == [16 + 4 * k for k in range(2, 7)][: len(grown)]
    if layout == "explicit-2x2x2":
        assert kept == []  # rows stay where they are on Explicit axes
    else:
        rows = 16 if layout == "no-mesh" else 32  # data8: 4 prompts padded to 8, x 4 samples
        assert kept and kept == sorted(kept, reverse=True) and kept[0] <= rows // 2
    stopped = np.asarray(expected.stopped)
    assert stopped.any() and not stopped.all()
    for name in ("tokens", "mask", "lengths", "stopped", "prompt_tokens", "prompt_mask"):
        np.testing.assert_array_equal(getattr(out, name), getattr(expected, name), err_msg=name)
    np.testing.assert_allclose(out.logprobs, expected.logprobs, atol=1e-5)
    np.testing.assert_allclose(out.policy_logprobs, expected.policy_logprobs, atol=1e-5)


def test_segmented_calls_compile_one_program_per_segment_and_batch_size(tiny_pair, monkeypatch):
    """Within one (prompt bucket, generation bucket), each decode program is one (cache length, rows) pair, whatever
    the call's max_new_tokens, key or drops: a repeat compiles nothing, new calls only the pairs they meet first."""
    _, model = tiny_pair("llama")
    kw = {"n": 4, "top_p": 0.95, "stop_ids": tuple(range(5)), "buckets": SEGMENTS_OF_4}
    seen = set()
    decode = sampler._decode

    def spy(program, state, carry, *args):
        seen.add((carry["cache"].max_len, carry["row"].shape[0]))
        return decode(program, state, carry, *args)

    monkeypatch.setattr(sampler, "_decode", spy)
    sampling.generate(model, PROMPTS, max_new_tokens=22, key=jax.random.key(2), **kw)
    before, pairs = decode._cache_size(), len(seen)
    sampling.generate(model, PROMPTS, max_new_tokens=22, key=jax.random.key(2), **kw)
    assert decode._cache_size() == before  # a repeat compiles nothing
    for seed in range(10):
        sampling.generate(model, PROMPTS, max_new_tokens=17 + seed % 6, key=jax.random.key(seed), **kw)
    assert len(seen) > pairs  # other keys stop other rows: other batch sizes
    assert decode._cache_size() - before == len(seen) - pairs


def test_the_cache_grows_and_loses_rows_one_array_at_a_time(tiny_pair, monkeypatch):
    """Growing the cache between segments and cutting it to the live rows delete each old array once its copy exists:
    when each array's program starts, the arrays copied before it are gone, so the old and the new cache are never
    in memory together whole (`benchmarks/sampler_memory.py`). A growth keeps the shared prompt prefix (n > 1) as
    it is; the first cut frees it layer by layer, as it copies each layer's prefix into the kept rows."""
    _, model = tiny_pair("llama")
    ops = []  # per grow or cut: (kind, the arrays it replaces, the prefix's arrays, alive as each program started)

    def track(kind: str, carry: dict) -> None:
        cache = carry["cache"]
        shared = [] if cache.prefix is None else [*cache.prefix.k, *cache.prefix.v]
        ops.append((kind, [*cache.k, *cache.v] + (shared if kind == "cut" else []), shared, []))

    def count_alive(fn):
        def counted(*args, **kwargs):
            _, old, _, alive = ops[-1]
            alive.append(sum(not x.is_deleted() for x in old))
            return fn(*args, **kwargs)

        return counted

    grow, keep_rows = sampler._grow, sampler._keep_rows
    prefix_kept = []  # per growth beside a shared prefix: its arrays all alive afterwards (the decode reads them)

    def tracked_grow(carry: dict, span: int) -> dict:
        track("grow", carry)
        out = grow(carry, span)
        if ops[-1][2]:
            prefix_kept.append(not any(x.is_deleted() for x in ops[-1][2]))
        return out

    monkeypatch.setattr(sampler, "_grow", tracked_grow)
    monkeypatch.setattr(
        sampler, "_keep_rows", lambda program, carry, keep: track("cut", carry) or keep_rows(program, carry, keep)
    )
    monkeypatch.setattr(sampler, "_pad_slots", count_alive(sampler._pad_slots))
    monkeypatch.setattr(sampler, "_cut_cache", count_alive(sampler._cut_cache))
    kw = {"n": 4, "max_new_tokens": 22, "key": jax.random.key(2), "top_p": 0.95, "buckets": SEGMENTS_OF_4}
    sampling.generate(model, PROMPTS, stop_ids=tuple(range(5)), **kw)  # most rows stop early: cut, then grows
    sampling.generate(model, PROMPTS, **kw)  # only EOS ends a row: grows beside the shared prefix

    layers = model.config.num_hidden_layers
    kinds = [(kind, bool(shared)) for kind, _, shared, _ in ops]
    assert ("cut", True) in kinds and ("grow", True) in kinds and ("grow", False) in kinds
    for _, old, _, alive in ops:
        step = len(old) // (2 * layers)  # arrays freed per program: the layer's own, and its prefix on the first cut
        # each of the 2 * layers key and value programs, then the valid mask's with every old array gone
        assert alive == [len(old) - step * j for j in range(2 * layers)] + [0]
        assert all(x.is_deleted() for x in old)
    assert prefix_kept and all(prefix_kept)
