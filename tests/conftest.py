"""Shared test setup.

Eight fake CPU devices are made before JAX starts, so sharding tests can build meshes; everything else runs on
device 0 as usual. Tests marked ``slow`` run only with ``--runslow`` (or NSA_JAX_RUNSLOW=1). The README runs the suite
in two worker processes (pytest-xdist, a file per worker at a time), the longest files first.
"""

import os

_flags = os.environ.get("XLA_FLAGS", "")
if "--xla_force_host_platform_device_count" not in _flags:  # other flags (--xla_cpu_max_isa=AVX2, ...) are kept
    os.environ["XLA_FLAGS"] = f"{_flags} --xla_force_host_platform_device_count=8".strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The command line keeps compiled programs in the user's home (nsa_jax/compile_cache.py); its runs in the tests do not.
os.environ.setdefault("NSA_JAX_COMPILE_CACHE", "0")

import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test, run with --runslow")


# The longest files of the default suite, run first: with the README's `-n 2 --dist loadfile` one worker takes the main
# job (about 2 minutes) while the other starts on the rest, instead of the main job coming last on its own.
FIRST = ("tests/test_main_job.py", "tests/test_readme.py")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: next((i for i, f in enumerate(FIRST) if item.nodeid.startswith(f)), len(FIRST)))
    if config.getoption("--runslow") or os.environ.get("NSA_JAX_RUNSLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
