"""On a mesh with Explicit axes (jax.make_mesh's default: shardings are part of the array types), generation gives
the unsharded result: the KV cache and the output buffers are created split like the batch."""

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from nsa_jax import parallel, sampling

PROMPTS = [[5, 9, 2, 33, 17], [12], [7, 7, 3, 60, 22, 1, 9, 50, 31]]


@pytest.mark.parametrize(
    ("sampling_kw", "shape", "layout"),
    [
        ({"greedy": True, "n": 2}, (2, 2, 2), "sharded-arg"),
        ({"temperature": 0.8, "top_p": 0.9, "n": 4}, (2, 2, 2), "sharded-ambient"),
        ({"temperature": 1.0, "n": 1}, (1, 2, 4), "sharded-ambient"),  # 2 KV heads cannot be split 4 ways
        ({"temperature": 1.0, "top_k": 5, "n": 3}, (8, 1, 1), "replicated-arg"),
    ],
    ids=["greedy", "top-p", "tensor4", "data8-replicated"],
)
def test_explicit_mesh_equals_unsharded(tiny_pair, sampling_kw, shape, layout):
    _, model = tiny_pair("llama")
    kw = {"max_new_tokens": 10, "key": jax.random.key(5), "stop_ids": (3,), **sampling_kw}
    expected = sampling.generate(model, PROMPTS, **kw)

    mesh = jax.make_mesh(shape, parallel.MESH_AXES, axis_types=(AxisType.Explicit,) * 3)
    copy = nnx.clone(model)  # new Variables: moving them leaves the shared fixture alone (nnx.merge would share them)
    if layout.startswith("replicated"):
        graphdef, state = nnx.split(copy)
        copy = nnx.merge(graphdef, jax.device_put(state, NamedSharding(mesh, P())))
    else:
        parallel.shard_model(copy, mesh)  # parameters split by their logical axes
    if layout.endswith("arg"):
        out = sampling.generate(copy, PROMPTS, mesh=mesh, **kw)
    else:
        with jax.set_mesh(mesh):
            out = sampling.generate(copy, PROMPTS, **kw)

    assert out.tokens.shape == expected.tokens.shape  # the batch padding to a multiple of the shards is cut off
    for name in ("tokens", "mask", "lengths", "stopped", "prompt_tokens", "prompt_mask"):
        np.testing.assert_array_equal(getattr(out, name), getattr(expected, name), err_msg=name)
    np.testing.assert_allclose(out.logprobs, expected.logprobs, atol=1e-5)
    np.testing.assert_allclose(out.policy_logprobs, expected.policy_logprobs, atol=1e-5)
