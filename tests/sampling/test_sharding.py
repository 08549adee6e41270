"""Under a mesh, with the batch split over its data axes, generation gives the unsharded result.

Meshes have Auto axes (as `parallel.make_mesh` builds them): the model's forward does not annotate Explicit types.
"""

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nsa_jax import parallel, sampling

PROMPTS = [[5, 9, 2, 33, 17], [12], [7, 7, 3, 60, 22, 1, 9, 50, 31]]


@pytest.mark.parametrize("layout", ["data8-replicated-arg", "data2-fsdp2-tensor2-logical-ambient"])
def test_sharded_equals_unsharded(tiny_pair, layout):
    _, model = tiny_pair("llama")
    kw = {"n": 4, "max_new_tokens": 10, "key": jax.random.key(5), "top_p": 0.9, "stop_ids": (3,)}
    expected = sampling.generate(model, PROMPTS, **kw)

    copy = nnx.clone(model)  # new Variables: moving them leaves the shared fixture alone (merge(split) shares them)
    if layout.startswith("data8"):
        mesh = parallel.make_mesh(data=8, fsdp=1)
        graphdef, state = nnx.split(copy)
        copy = nnx.merge(graphdef, jax.device_put(state, NamedSharding(mesh, P())))
        out = sampling.generate(copy, PROMPTS, mesh=mesh, **kw)
    else:
        mesh = parallel.make_mesh(data=2, fsdp=2, tensor=2)
        parallel.shard_model(copy, mesh)  # parameters split by their logical axes
        with jax.set_mesh(mesh):
            out = sampling.generate(copy, PROMPTS, **kw)

    assert out.tokens.shape == expected.tokens.shape  # the batch padding to a multiple of the shards is cut off
    for name in ("tokens", "mask", "lengths", "stopped", "prompt_tokens"):
        np.testing.assert_array_equal(getattr(out, name), getattr(expected, name), err_msg=name)
    np.testing.assert_allclose(out.logprobs, expected.logprobs, atol=1e-5)
    np.testing.assert_allclose(out.policy_logprobs, expected.policy_logprobs, atol=1e-5)
