"""nsa_jax.hugepages: the tunable is added without losing others, the entry point re-executes exactly once, and with
the tunable glibc's malloc of a large buffer takes a small fraction of the page faults it takes without."""

import os
import subprocess
import sys
import textwrap

import pytest

from nsa_jax import hugepages

_PLAIN = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", hugepages.OPT_OUT)}
needs_thp = pytest.mark.skipif(not hugepages.applies(_PLAIN), reason="no glibc >= 2.35 with transparent huge pages")


def test_environment_adds_the_tunable_and_keeps_the_others():
    env = hugepages.environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "HOME": "/h"})
    assert env == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "HOME": "/h"}
    assert hugepages.environment({})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"


def test_does_not_apply_when_turned_off_or_already_chosen():
    assert not hugepages.applies({**_PLAIN, hugepages.OPT_OUT: "0"})
    assert not hugepages.applies({**_PLAIN, "GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})
    assert not hugepages.applies({**_PLAIN, "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"})


def _run(code: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@needs_thp
def test_reexec_starts_the_process_again_once_with_the_same_arguments(tmp_path):
    starts = tmp_path / "starts"
    code = f"""
        import os, sys
        with open({str(starts)!r}, "a") as f:
            f.write("start\\n")
        from nsa_jax import hugepages
        hugepages.reexec()
        print(os.environ.get("GLIBC_TUNABLES", "-"), sys.argv[1:])
    """
    out = _run(code, {**_PLAIN, "GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}, "--flag", "x y")
    assert starts.read_text().splitlines() == ["start", "start"]
    assert out.strip() == "glibc.malloc.arena_max=4:glibc.malloc.hugetlb=1 ['--flag', 'x y']"
    assert _run(code, {**_PLAIN, hugepages.OPT_OUT: "0"}).strip() == "- []"  # turned off: runs as it is
    assert starts.read_text().count("start") == 3  # one start, no second


@needs_thp
def test_the_tunable_cuts_the_page_faults_of_a_large_malloc():
    # 512 MiB through glibc's malloc (an mmap, as XLA CPU's temporary buffers are), written once, freed; the
    # process's minor page faults over that.
    code = """
        import ctypes, resource
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc.restype = ctypes.c_void_p
        n = 512 << 20
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        p = libc.malloc(ctypes.c_size_t(n))
        ctypes.memset(p, 1, n)
        libc.free(ctypes.c_void_p(p))
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
    plain = int(_run(code, _PLAIN))
    huge = int(_run(code, hugepages.environment(_PLAIN)))
    assert plain >= (512 << 20) // 4096 // 2  # 4 KiB pages: about one fault per page
    assert huge < plain / 20
