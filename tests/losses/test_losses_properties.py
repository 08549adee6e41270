"""Property tests (hypothesis): every loss stays finite, in value, gradient and metrics, on the edge cases a
trainer meets: empty masks, groups with equal rewards, group size 1, log-probs near -1e9, bfloat16 inputs."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nsa_jax import losses

B, T, K = 8, 5, 3
# The registry's presets "rloo", "psr" and "w-reinforce" differ from these only in constants.
POLICY = ["grpo", "drgrpo", "lens", "nsr", "ngrpo", "bcpg", "topr", "rft"]


@functools.cache
def _all_losses(group_size: int, dtype: str):
    """One jitted function evaluating every loss on one batch (one compile per group size and dtype)."""

    def run(logp, logp_old, logp_ref, mask, rewards, step_ids, step_correct, pairs):
        logp, logp_old, logp_ref, pairs = (x.astype(dtype) for x in (logp, logp_old, logp_ref, pairs))
        out = {}
        for name in POLICY:
            fn = losses.get_policy_loss(name)
            kw = {"step_ids": step_ids, "step_correct": step_correct} if name == "bcpg" else {}
            if name in ("grpo", "lens"):
                kw = {"logp_ref": logp_ref, "beta_kl": 0.1}

            def value(lp, fn=fn, kw=kw):
                term, metrics = fn(lp, logp_old, rewards, mask, group_size, **kw)
                return term.value, metrics

            out[name] = jax.value_and_grad(value, has_aux=True)(logp)
        pair_losses = {
            "dpo": lambda p: losses.dpo_loss(p[0], p[1], p[2], p[3]),
            "bt": lambda p: losses.bt_loss(p[0], p[1]),
        }
        for name, fn in pair_losses.items():
            out[name] = jax.value_and_grad(lambda p, fn=fn: (fn(p)[0].value, fn(p)[1]), has_aux=True)(pairs)
        out["lens_rewards"] = losses.lens_rewards(rewards, logp_old, mask, group_size)
        return out

    return jax.jit(run)


@st.composite
def batches(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Each (group size, dtype) is one compile of every loss, so bfloat16 is exercised at one group size.
    group_size, dtype = draw(st.sampled_from([(1, "float32"), (4, "float32"), (4, "bfloat16")]))
    rewards = {
        "random": rng.integers(0, 2, B),
        "all wrong": np.zeros(B),
        "all correct": np.ones(B),
    }[draw(st.sampled_from(["random", "all wrong", "all correct"]))]
    mask = {
        "random": rng.random((B, T)) < 0.7,
        "empty": np.zeros((B, T)),
        "full": np.ones((B, T)),
    }[draw(st.sampled_from(["random", "empty", "full"]))]
    scale = draw(st.sampled_from(["normal", "near -1e9", "policy near -1e9"]))
    logp_old = -rng.exponential(1.0, (B, T))
    logp = logp_old + rng.normal(0, 0.3, (B, T))
    if scale == "near -1e9":
        logp_old, logp = logp_old - 1e9, logp - 1e9
    elif scale == "policy near -1e9":
        logp = logp - 1e9
    logp_ref = logp_old + rng.normal(0, 0.2, (B, T))
    step_ids = np.where(mask > 0, np.arange(T) % K, -1)
    pairs = rng.normal(-30, 30, (4, 6)) * draw(st.sampled_from([1.0, 1e7]))
    arrays = (logp, logp_old, logp_ref, mask, rewards)
    return (
        group_size,
        dtype,
        [np.asarray(x, np.float32) for x in arrays]
        + [
            step_ids.astype(np.int32),
            rng.random((B, K)) < 0.5,
            pairs.astype(np.float32),
        ],
    )


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(jnp.asarray(x, jnp.float32)))) for x in jax.tree_util.tree_leaves(tree))


@settings(max_examples=25, deadline=None)
@given(batches())
def test_every_loss_is_finite(batch):
    group_size, dtype, arrays = batch
    out = _all_losses(group_size, dtype)(*arrays)
    for name, result in out.items():
        assert _finite(result), name
    for name in POLICY:
        (_, metrics), _ = out[name]
        assert {"tokens", "all_wrong_frac"} <= set(metrics), name
    mask, rewards = arrays[3], arrays[4]
    if not mask.any():
        for name in POLICY:
            (value, _), grad = out[name]
            assert float(value) == 0.0 and not np.any(np.asarray(grad, np.float32)), name
    if np.all(rewards == rewards[0]):
        # Every group has one outcome: the group-relative advantage, hence Dr.GRPO's gradient, is exactly 0.
        (_, _), grad = out["drgrpo"]
        assert not np.any(np.asarray(grad, np.float32))
    rt, d = out["lens_rewards"]
    assert np.all(np.asarray(rt) >= -1) and np.all(np.asarray(rt) <= 1) and np.all(np.asarray(d) >= 0)
