"""With n > 1 samples per prompt the sampler keeps the prompt's KV once per group (`models.PrefixKV`) instead of a
copy per sample. Its output must be the copy's: n samples of each prompt equal n = 1 sampling of the prompts
repeated n times (the plain cache, one copy of the prompt per row; row keys depend on the row's index only), token
for token and in log-probs within float tolerance, across segments and dropped rows, without a mesh and on Auto
and Explicit meshes. (test_distribution.py checks the shared path against teacher forcing; test_parity.py the
plain path against transformers.)"""

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import AxisType

from nsa_jax import parallel, sampling
from nsa_jax.sampling import sampler

PROMPTS = [[5, 9, 2, 33, 17], [12], [7, 7, 3, 60, 22, 1, 9, 50, 31], [40, 2, 19]]
N = 4


# The meshes in the slow set CI also runs: test_segments.py covers the shared path on them in the default suite.
@pytest.mark.parametrize(
    "layout",
    [
        "no-mesh",
        pytest.param("auto-data8", marks=pytest.mark.slow),
        pytest.param("explicit-2x2x2", marks=pytest.mark.slow),
    ],
)
def test_shared_prompt_kv_equals_a_copy_per_sample(tiny_pair, layout, monkeypatch):
    _, model = tiny_pair("qwen2")
    mesh = None
    if layout == "auto-data8":
        mesh = parallel.make_mesh(data=8, fsdp=1)
    elif layout == "explicit-2x2x2":
        mesh = jax.make_mesh((2, 2, 2), parallel.MESH_AXES, axis_types=(AxisType.Explicit,) * 3)
    if mesh is not None:
        model = nnx.clone(model)
        parallel.shard_model(model, mesh)
    # Segments of 4 slots, and stop ids that end most rows early: the shared prefix meets grown caches and, off
    # Explicit meshes, the drop that copies it into the kept rows.
    kw = {
        "max_new_tokens": 14,
        "key": jax.random.key(4),
        "temperature": 0.9,
        "top_p": 0.95,
        "stop_ids": tuple(range(5)),
        "buckets": sampling.Buckets(cache_block=4),
        "mesh": mesh,
    }
    caches = []
    decode = sampler._decode
    monkeypatch.setattr(
        sampler, "_decode", lambda p, s, carry, *a: caches.append(carry["cache"]) or decode(p, s, carry, *a)
    )
    shared = sampling.generate(model, PROMPTS, n=N, **kw)
    shared_caches, caches[:] = list(caches), []
    copies = sampling.generate(model, [p for p in PROMPTS for _ in range(N)], n=1, **kw)

    # The shared path really shared: one prefix row per (padded) prompt beside N own rows per prompt, whose own
    # slots start empty (prompt bucket 16, then the first segment's 4 slots); the copy path held the prompt in
    # every row. Off Explicit meshes a drop ended the sharing: the kept rows hold their prompt's slots themselves.
    first, last = shared_caches[0], shared_caches[-1]
    prompts = first.prefix.valid.shape[0]
    assert first.prefix.k[0].shape[0] == prompts and first.k[0].shape[0] == prompts * N
    assert (first.prefix.length, first.max_len) == (16, 4)
    if layout == "explicit-2x2x2":
        assert all(c.prefix is not None for c in shared_caches)
    else:
        assert last.prefix is None and last.max_len == last.span > 16 and last.k[0].shape[0] < prompts * N
    assert all(c.prefix is None and c.max_len > 16 for c in caches)
    assert np.asarray(shared.stopped).any() and not np.asarray(shared.stopped).all()
    for name in ("tokens", "mask", "lengths", "stopped", "prompt_tokens", "prompt_mask"):
        np.testing.assert_array_equal(getattr(shared, name), getattr(copies, name), err_msg=name)
    np.testing.assert_allclose(shared.logprobs, copies.logprobs, atol=1e-5)
    np.testing.assert_allclose(shared.policy_logprobs, copies.policy_logprobs, atol=1e-5)
