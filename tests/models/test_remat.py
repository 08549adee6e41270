"""Activation rematerialisation (`ModelConfig.remat`): same loss and gradients as without it, less compiled memory,
the decode path untouched, and `model.remat` reaching the policy that training loads."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nsa_jax import models, parallel
from nsa_jax.models.tiny import TINY_DIR
from nsa_jax.train.core import load_policy

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from configs import base

SMALL = models.ModelConfig(
    vocab_size=96,
    hidden_size=64,
    intermediate_size=192,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
)


def _loss(params, graphdef, ids, mask):
    """Masked next-token cross-entropy: the shape of loss training differentiates."""
    logits = nnx.merge(graphdef, params)(ids, attention_mask=mask)[:, :-1]
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), ids[:, 1:, None], axis=-1)[..., 0]
    weight = mask[:, 1:].astype(jnp.float32)
    return -jnp.sum(logp * weight) / jnp.sum(weight)


def _split(cfg: models.ModelConfig):
    return nnx.split(models.init_model(cfg, seed=0), nnx.Param)


_IDS = jnp.asarray(np.random.RandomState(0).randint(3, 96, (3, 24)), jnp.int32)
_MASK = jnp.ones_like(_IDS).at[0, :5].set(0).at[2, -4:].set(0)  # left- and right-padded rows
_GRAD = jax.jit(jax.value_and_grad(_loss), static_argnums=1)


@pytest.fixture(scope="module")
def no_remat_grads():
    graphdef, params = _split(SMALL)
    return _GRAD(params, graphdef, _IDS, _MASK)


@pytest.mark.parametrize("remat", ["full", "dots"])
def test_remat_gives_the_loss_and_gradients_of_no_remat(remat, no_remat_grads):
    ref_loss, ref_grads = no_remat_grads
    graphdef, params = _split(SMALL.replace(remat=remat))
    loss, grads = _GRAD(params, graphdef, _IDS, _MASK)
    assert graphdef != _split(SMALL)[0]  # the remat choice is part of the static graph, so jit recompiles for it
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-6)
    flat, ref_flat = nnx.to_flat_state(grads), dict(nnx.to_flat_state(ref_grads))
    assert len(flat) == len(ref_flat)
    for path, g in flat:
        np.testing.assert_allclose(np.asarray(g[...]), np.asarray(ref_flat[path][...]), rtol=1e-5, atol=1e-7)


def test_remat_lowers_compiled_temp_memory():
    cfg = SMALL.replace(num_hidden_layers=4)
    ids = jnp.zeros((2, 256), jnp.int32)
    mask = jnp.ones_like(ids)
    # XLA:CPU expands the optimisation barriers jax.checkpoint inserts before its CSE pass, which then merges the
    # recomputation back into the forward pass (so remat saves nothing on CPU; jax-ml/jax#19822). GPU and TPU keep
    # the barriers; keeping them on CPU too measures the schedule those backends compile.
    options = {"xla_disable_hlo_passes": "cse_barrier_expander"} if jax.default_backend() == "cpu" else None
    temp = {}
    for remat in ("none", "full"):
        graphdef, params = _split(cfg.replace(remat=remat))
        lowered = jax.jit(jax.value_and_grad(_loss), static_argnums=1).lower(params, graphdef, ids, mask)
        stats = lowered.compile(compiler_options=options).memory_analysis()
        if stats is None or not getattr(stats, "temp_size_in_bytes", 0):
            pytest.skip(f"compiled memory analysis is not available on {jax.default_backend()}")
        temp[remat] = stats.temp_size_in_bytes
    print({k: f"{v / 2**20:.1f} MiB" for k, v in temp.items()})
    assert temp["full"] < 0.5 * temp["none"]


def test_decode_with_cache_is_unaffected_by_remat():
    """The sampler's path: prefill then one decode step into a KV cache, against the cache-free no-remat logits."""
    ids = jnp.asarray(np.random.RandomState(1).randint(3, 96, (2, 10)), jnp.int32)
    mask = jnp.ones_like(ids).at[1, :3].set(0)
    ref = jax.jit(lambda m: m(ids, attention_mask=mask))(models.init_model(SMALL, seed=0))

    @jax.jit
    def prefill_then_decode(model):
        positions = models.positions_from_mask(mask)
        cache = model.init_cache(2, 16)
        hidden, cache = model.forward(ids[:, :-1], positions[:, :-1], mask[:, :-1], cache)
        last, cache = model.forward(ids[:, -1:], positions[:, -1:], mask[:, -1:], cache)
        return model.logits(jnp.concatenate([hidden, last], axis=1)), cache.index

    logits, index = prefill_then_decode(models.init_model(SMALL.replace(remat="full"), seed=0))
    assert int(index) == 10
    real = np.asarray(mask, bool)
    np.testing.assert_allclose(np.asarray(logits)[real], np.asarray(ref)[real], atol=1e-5)


def test_unknown_remat_is_rejected():
    with pytest.raises(ValueError, match="remat='some' is not one of none, full, dots"):
        SMALL.replace(remat="some")


def test_load_policy_applies_model_remat(tmp_path):
    path = models.tiny_model_dir(tmp_path / "tiny", seed=0)
    config = base.get_config()
    assert config.model.remat == "none"
    config.model.remat = "dots"
    mesh = parallel.make_mesh(devices=jax.devices()[:1])
    model = load_policy(config, mesh, str(path))
    assert model.config.remat == "dots"
    assert model.config.replace(remat="none") == models.load_config(TINY_DIR)  # nothing else changed
