"""`parallel.map_rows`: chunked, padded, optionally mesh-sharded application of a jitted function, equal to one call
on all rows, whatever the chunking."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nsa_jax import parallel


@jax.jit
def _row_sums(scale, x, y):
    return scale * jnp.sum(x, axis=1) + y[:, 0]


@pytest.mark.parametrize("rows", [1, 3, 7, 8])
def test_map_rows_equals_one_call(rows):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)).astype(np.float32), rng.normal(size=(7, 2)).astype(np.float32)
    got = parallel.map_rows(_row_sums, 2.0, [x, y], rows=rows)
    np.testing.assert_allclose(got, 2.0 * x.sum(axis=1) + y[:, 0], rtol=1e-6)
    assert got.shape == (7,)


def test_map_rows_on_a_mesh_splits_each_chunk_over_the_batch_axes():
    mesh = parallel.make_mesh(1, -1, 1)
    x = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    seen = []

    def record(scale, a):
        seen.append(a.sharding)
        return _row_sums(scale, a, a)

    got = parallel.map_rows(record, 1.0, [x], rows=8, mesh=mesh)
    np.testing.assert_allclose(got, x.sum(axis=1) + x[:, 0])
    assert all(s.spec == parallel.batch_sharding(mesh, 2).spec for s in seen)
    with pytest.raises(ValueError, match="at least one row"):
        parallel.map_rows(_row_sums, 1.0, [x[:0], x[:0]], rows=4)
