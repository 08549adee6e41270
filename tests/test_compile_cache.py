"""nsa_jax.compile_cache: where the command line keeps compiled programs, and that machines with different
instruction sets get different folders (the second run of the command line loading its programs: test_cli.py)."""

from pathlib import Path

import jax
import pytest

from nsa_jax import compile_cache

_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B14
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B14
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw
"""


def test_folder_is_the_users_cache_unless_chosen_or_turned_off(tmp_path):
    assert compile_cache.root({"XDG_CACHE_HOME": str(tmp_path)}) == str(tmp_path / "nsa_jax" / "xla")
    assert compile_cache.root({}) == str(Path.home() / ".cache" / "nsa_jax" / "xla")
    assert compile_cache.root({compile_cache.CHOICE: "gs://bucket/xla", "XDG_CACHE_HOME": "/x"}) == "gs://bucket/xla"
    assert compile_cache.root({compile_cache.CHOICE: "0"}) is None


def test_turned_off_it_leaves_jax_without_a_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(compile_cache.CHOICE, "0")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if jax.config.jax_compilation_cache_dir:
        pytest.skip("JAX_COMPILATION_CACHE_DIR is set: the command line takes the user's own cache")
    assert compile_cache.configure() is None
    assert jax.config.jax_compilation_cache_dir is None and not list(tmp_path.iterdir())


def test_a_host_without_one_instruction_set_gets_another_folder():
    tag = compile_cache.machine_tag("cpu", "cpu", _CPUINFO)
    assert tag.startswith("cpu-") and len(tag) == len("cpu-") + 12
    without_avx512 = _CPUINFO.replace(" avx512f avx512bw", "")
    assert compile_cache.machine_tag("cpu", "cpu", without_avx512) != tag
    other_model = _CPUINFO.replace("EPYC 9B14", "EPYC 7B13")
    assert compile_cache.machine_tag("cpu", "cpu", other_model) != tag
    # The same host whatever order its flags are listed in, and whatever its other processors say.
    reordered = _CPUINFO.replace("fpu sse2 avx avx2 avx512f avx512bw", "avx512bw avx fpu avx2 sse2 avx512f", 1)
    assert compile_cache.machine_tag("cpu", "cpu", reordered) == tag
    assert compile_cache.machine_tag("cpu", "cpu", _CPUINFO.split("\n\n")[0]) == tag


def test_accelerators_are_told_apart_by_their_kind():
    assert compile_cache.machine_tag("gpu", "NVIDIA H100 80GB HBM3") == "gpu-NVIDIA_H100_80GB_HBM3"
    assert compile_cache.machine_tag("tpu", "TPU v5 lite") == "tpu-TPU_v5_lite"
