"""token_logprobs is data parallel on the trainers' mesh (`parallel.make_mesh()`, Auto axes, the batch split by
`parallel.batch_sharding`): the compiled value and gradient gather no activations (each device scores its own rows;
the only collectives are the unembedding gradient's all-reduce), and equal the unsharded values."""

import re

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nsa_jax import losses, parallel


def test_logprobs_on_a_batch_sharded_mesh_gather_nothing_and_equal_one_device():
    mesh = parallel.make_mesh()  # 8 CPU devices in the suite, all on the batch axes
    assert int(np.prod([mesh.shape[a] for a in parallel.BATCH_AXES])) == 8
    b, t, d, v = 16, 24, 32, 96
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    hidden = jax.random.normal(k1, (b, t, d))
    unembed = jax.random.normal(k2, (d, v)) / np.sqrt(d)
    targets = jax.random.randint(k3, (b, t), 0, v)

    def loss(h, w, y):
        return jnp.sum(losses.token_logprobs(h, w, y, chunk_size=64))  # 4 positions of every row per chunk

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    args = (
        jax.device_put(hidden, parallel.batch_sharding(mesh, 3)),
        jax.device_put(unembed, NamedSharding(mesh, P())),
        jax.device_put(targets, parallel.batch_sharding(mesh)),
    )
    text = step.lower(*args).compile().as_text()
    assert not re.search(r"all-gather\(", text), "the compiled step gathers rows onto every device"
    assert re.search(r"all-reduce\(", text)  # the unembedding gradient's sum over the devices' rows
    (value, (dh, dw)), (ref, (ref_dh, ref_dw)) = step(*args), step(hidden, unembed, targets)
    assert dh.sharding.spec == args[0].sharding.spec
    np.testing.assert_allclose(value, ref, rtol=1e-5)
    np.testing.assert_allclose(dh, ref_dh, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-4, atol=1e-5)  # sums over 384 rows in another order
