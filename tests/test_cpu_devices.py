"""nsa_jax.cpu_devices: the host device count is the largest power of two within the cores, at most 8 (or the one
asked for), added to XLA_FLAGS without losing other flags, never over a count already chosen; and a process that
calls `configure()` before JAX starts gets that many CPU devices."""

import os
import subprocess
import sys
import textwrap

import pytest

from nsa_jax import cpu_devices

_PLAIN = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", cpu_devices.CHOICE)}


@pytest.mark.parametrize(("cores", "devices"), [(1, 1), (2, 2), (3, 2), (6, 4), (8, 8), (12, 8), (16, 8), (96, 8)])
def test_device_count_is_the_largest_power_of_two_within_the_cores_up_to_8(cores, devices):
    assert cpu_devices.device_count({}, cores=cores) == devices


def test_an_asked_count_wins_and_zero_or_one_turns_it_off():
    assert cpu_devices.device_count({cpu_devices.CHOICE: "3"}, cores=16) == 3
    assert cpu_devices.device_count({cpu_devices.CHOICE: "16"}, cores=16) == 16
    for off in ("0", "1"):
        env = {cpu_devices.CHOICE: off, "XLA_FLAGS": "--xla_cpu_max_isa=AVX2"}
        assert cpu_devices.environment(env, cores=16) == env
    with pytest.raises(ValueError, match="NSA_JAX_CPU_DEVICES"):
        cpu_devices.device_count({cpu_devices.CHOICE: "auto"}, cores=4)


def test_environment_adds_the_flag_keeps_other_flags_and_never_overrides_a_chosen_count():
    env = cpu_devices.environment({"XLA_FLAGS": "--xla_cpu_max_isa=AVX2", "HOME": "/h"}, cores=4)
    assert env == {"XLA_FLAGS": "--xla_cpu_max_isa=AVX2 --xla_force_host_platform_device_count=4", "HOME": "/h"}
    assert cpu_devices.environment({}, cores=2) == {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    chosen = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    assert cpu_devices.environment(chosen, cores=2) == chosen
    assert cpu_devices.environment({}, cores=1) == {}  # one core: one device, XLA's default


def test_configure_before_jax_starts_gives_that_many_cpu_devices():
    code = """
        from nsa_jax import cpu_devices
        cpu_devices.configure()
        import jax
        print(len(jax.devices("cpu")))
    """
    env = {**_PLAIN, cpu_devices.CHOICE: "3", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"
