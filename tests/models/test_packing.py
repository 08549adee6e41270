"""`models.Packing`: the responses' real tokens run the position-wise layers packed. References: numpy written from
the layout (block i holds rows i*R/D .. (i+1)*R/D - 1, its real tokens row by row) and the padded forward of the
same batch (`sequence_logprobs` without `packed_width`)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nsa_jax import models, parallel
from nsa_jax.train.core import sequence_logprobs
from tests.train.helpers import TINY


def right_padded(rows: int, width: int, seed: int, low: int = 0) -> np.ndarray:
    lengths = np.random.default_rng(seed).integers(low, width + 1, rows)
    return (np.arange(width)[None] < lengths[:, None]).astype(np.int32)


def numpy_pack(x: np.ndarray, mask: np.ndarray, blocks: int) -> list[np.ndarray]:
    """Each block's real tokens in order, from the definition."""
    rows = len(x) // blocks
    return [x[i * rows : (i + 1) * rows][mask[i * rows : (i + 1) * rows] > 0] for i in range(blocks)]


@pytest.mark.parametrize("blocks", [1, 2, 4])
def test_pack_and_unpack_move_the_real_tokens_and_their_gradients(blocks):
    mask = right_padded(8, 5, seed=blocks)
    x = np.random.default_rng(1).normal(size=(8, 5, 3)).astype(np.float32)
    capacity = max(len(b) for b in numpy_pack(x, mask, blocks)) + 1  # one unused slot at least
    packing = models.Packing.from_mask(jnp.asarray(mask), blocks, capacity)
    packed = np.asarray(packing.pack(jnp.asarray(x)))
    assert packed.shape == (blocks, capacity, 3)
    for got, want in zip(packed, numpy_pack(x, mask, blocks), strict=True):
        np.testing.assert_array_equal(got[: len(want)], want)
    np.testing.assert_array_equal(packing.unpack(jnp.asarray(packed)), x * mask[..., None])
    assert not packing.overflow

    # The gradients: pack's puts each slot's cotangent back at its token (zeros at the padding); unpack's takes
    # each real token's cotangent to its slot (zeros at unused slots).
    g = np.random.default_rng(2).normal(size=packed.shape).astype(np.float32)
    (dx,) = jax.vjp(packing.pack, jnp.asarray(x))[1](jnp.asarray(g))
    want = np.zeros_like(x)
    for i in range(blocks):
        rows = slice(i * 8 // blocks, (i + 1) * 8 // blocks)
        block = want[rows]
        block[mask[rows] > 0] = g[i, : mask[rows].sum()]
        want[rows] = block
    np.testing.assert_array_equal(dx, want)
    (dp,) = jax.vjp(packing.unpack, jnp.asarray(packed))[1](jnp.asarray(x))
    for i, real in enumerate(numpy_pack(x, mask, blocks)):
        np.testing.assert_array_equal(dp[i, : len(real)], real)
        np.testing.assert_array_equal(dp[i, len(real) :], 0)


def test_packed_width_holds_the_fullest_block_of_every_mask():
    masks = [right_padded(8, 12, seed=s) for s in range(3)]
    width = models.packed_width(masks, blocks=2, quantum=4)
    need = max(int(m.reshape(2, -1).sum(1).max()) for m in masks)
    assert width % 4 == 0 and 4 * width >= need > 4 * (width - 4)  # 4 rows a block; the smallest such multiple
    assert models.packed_width([np.ones((8, 6))], blocks=2) == 6  # never more than the width
    with pytest.raises(ValueError, match="do not split into 3"):
        models.Packing.from_mask(jnp.ones((8, 6)), 3, 8)


def _batch(rows: int, group: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    prompt_mask = np.repeat((np.arange(5)[None] >= rng.integers(0, 5, rows // group)[:, None]), group, 0)
    prompt_ids = np.repeat(rng.integers(1, TINY.vocab_size, (rows // group, 5)), group, 0) * prompt_mask
    mask = right_padded(rows, 10, seed, low=1)
    mask[-2:] = np.arange(10) < np.array([[2], [10]])  # a block ending at a real token: its unused slots repeat it
    return {
        "prompt_ids": prompt_ids.astype(np.int32),
        "prompt_mask": prompt_mask.astype(np.int32),
        "input_ids": (rng.integers(1, TINY.vocab_size, (rows, 10)) * mask).astype(np.int32),
        "attention_mask": mask,
    }


# Without a mesh, with rematerialised layers and chunked attention (slow), and on an 8-device Auto mesh (one block
# per device: 2 rows each).
@pytest.mark.parametrize("variant", ["plain", pytest.param("remat+chunked", marks=pytest.mark.slow), "auto-mesh"])
def test_packed_logprobs_and_gradients_equal_the_padded_rows(variant):
    cfg = TINY if variant != "remat+chunked" else dataclasses.replace(TINY, remat="full", attention="chunked",
                                                                      attention_chunk=4)  # fmt: skip
    graphdef, params = nnx.split(models.init_model(cfg, seed=0), nnx.Param)
    host = _batch(16, 4, seed=3)
    mesh = parallel.make_mesh() if variant == "auto-mesh" else None
    blocks = 8 if mesh else 1
    width = models.packed_width([host["attention_mask"]], blocks)
    assert width < 10  # something is packed away
    packed = {**host, "packed_width": np.zeros((16, width), np.uint8)}
    weights = np.random.default_rng(4).normal(size=(16, 10)).astype(np.float32) * host["attention_mask"]

    def loss(p, batch):
        logp = sequence_logprobs(nnx.merge(graphdef, p), batch, chunk_size=16, group_size=4)
        return jnp.sum(logp * weights), logp

    def run(batch):
        if mesh is not None:
            batch = {k: jax.device_put(v, parallel.batch_sharding(mesh, v.ndim)) for k, v in batch.items()}
        return jax.jit(jax.value_and_grad(loss, has_aux=True))(params, batch)

    (_, want), grad_want = run(host)
    (_, got), grad_got = run(packed)
    real = host["attention_mask"] > 0
    np.testing.assert_allclose(np.asarray(got)[real], np.asarray(want)[real], atol=1e-5)
    np.testing.assert_array_equal(np.asarray(got)[~real], 0.0)
    for a, b in zip(jax.tree.leaves(grad_want), jax.tree.leaves(grad_got), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_a_block_over_its_capacity_gives_nan_not_wrong_logprobs():
    graphdef, params = nnx.split(models.init_model(TINY, seed=0), nnx.Param)
    host = _batch(8, 4, seed=5)
    width = models.packed_width([host["attention_mask"]], 1, quantum=1)
    batch = {**host, "packed_width": np.zeros((8, width - 1), np.uint8)}
    logp = jax.jit(lambda p, b: sequence_logprobs(nnx.merge(graphdef, p), b, chunk_size=16, group_size=4))
    assert np.isnan(np.asarray(logp(params, batch))).all()
    fits = {**host, "packed_width": np.zeros((8, width), np.uint8)}
    assert np.isfinite(np.asarray(logp(params, fits))).all()
