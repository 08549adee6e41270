"""Under a mesh, with the batch split over its data axes, generation gives the unsharded result.

Meshes have Auto axes (as `parallel.make_mesh` builds them): the model's forward does not annotate Explicit types.
"""

import re

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


_COLLECTIVE = re.compile(r"\b(all-reduce|all-gather|all-to-all|collective-permute|reduce-scatter)(-start)?\(")


def _collectives_in_loops(hlo: str) -> set[str]:
    """The collective ops of a compiled HLO module that run inside a while loop (its condition, its body, or a
    computation they call), by name."""
    bodies, calls = {}, {}
    name = None
    for line in hlo.splitlines():
        header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
        if header:
            name = header.group(1)
            bodies[name], calls[name] = [], set()
        elif name is not None:
            bodies[name].append(line)
            calls[name] |= set(re.findall(r"(?:calls|to_apply|body|condition)=%?([\w.\-]+)", line))
    loops = {
        c
        for lines in bodies.values()
        for line in lines
        if " while(" in line
        for c in re.findall(r"(?:body|condition)=%?([\w.\-]+)", line)
    }
    seen, todo = set(), list(loops)
    while todo:
        c = todo.pop()
        if c not in seen and c in bodies:
            seen.add(c)
            todo += calls[c]
    return {m.group(0) for c in seen for line in bodies[c] for m in [_COLLECTIVE.search(line)] if m}


@pytest.mark.parametrize("own_loops", [True, False])
def test_devices_decode_in_loops_of_their_own(tiny_pair, monkeypatch, own_loops):
    """With the batch split over an Auto mesh, each device decodes its rows in a loop of its own: the compiled
    decode program has no collective inside its loop (one loop over the whole batch has the all-reduce of its stop
    test in every step). Rows stop at different steps on different devices, across segments and dropped rows, and
    the outputs equal the unsharded ones either way."""
    from nsa_jax.sampling import sampler

    _, model = tiny_pair("llama")
    compiled = []
    decode = sampler._decode

    def recording(program, *args):  # each decode program compiled once, its text kept, then called
        executable = decode.lower(program, *args).compile()
        compiled.append(executable.as_text())
        return executable(*args)

    monkeypatch.setattr(sampler, "_decode", recording)
    keep_rows, drops = sampler._keep_rows, []
    monkeypatch.setattr(sampler, "_keep_rows", lambda *args: drops.append(1) or keep_rows(*args))
    prompts = [[5 + i, 9, 2 * i + 1, 33][: 1 + i % 4] for i in range(8)]
    kw = {
        "n": 2,
        "max_new_tokens": 24,
        "key": jax.random.key(7),
        "stop_ids": (3, 11),
        "buckets": sampling.Buckets(cache_block=8),
    }
    expected = sampling.generate(model, prompts, **kw)
    lengths = np.asarray(expected.lengths)
    assert len(set(lengths)) > 3 and lengths.min() < 8 < lengths.max()  # rows stop in different segments
    compiled.clear()
    drops.clear()
    mesh = parallel.make_mesh(data=4, fsdp=2)
    copy = parallel.shard_model(nnx.clone(model), mesh)
    out = sampling.generate(copy, prompts, mesh=mesh, own_loops=own_loops, **kw)
    for name in ("tokens", "mask", "lengths", "stopped"):
        np.testing.assert_array_equal(getattr(out, name), getattr(expected, name), err_msg=name)
    np.testing.assert_allclose(out.logprobs, expected.logprobs, atol=1e-5)
    assert len(compiled) >= 2 and drops  # one decode program per segment; finished rows were dropped
    for hlo in compiled:
        in_loops = _collectives_in_loops(hlo)
        assert (not in_loops) if own_loops else in_loops, in_loops


def test_own_loops_on_explicit_axes_is_refused(tiny_pair):
    """A loop per device is built on Auto axes only; asking for it on an Explicit mesh says so instead of decoding
    otherwise than asked."""
    from jax.sharding import AxisType

    _, model = tiny_pair("llama")
    mesh = jax.make_mesh((8, 1, 1), parallel.MESH_AXES, axis_types=(AxisType.Explicit,) * 3)
    with pytest.raises(ValueError, match="own_loops needs a mesh with Auto axes"):
        sampling.generate(model, PROMPTS, max_new_tokens=4, key=jax.random.key(0), mesh=mesh, own_loops=True)
