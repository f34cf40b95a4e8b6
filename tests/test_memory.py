"""planning.memory: with keep_freed_memory, a large freed array's pages stay in the process for the next
one to reuse; without it (or switched off), glibc returns them to the kernel at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent("""
    import sys
    import numpy as np
    from planning.memory import keep_freed_memory

    applied = keep_freed_memory() if sys.argv[1] == "keep" else False
    def resident_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20
    before = resident_mb()
    block = np.ones(40_000_000 // 8)  # 40 MB, above glibc's largest mmap threshold
    del block
    print(applied, round(resident_mb() - before))
""")


def probe(mode: str, **env) -> tuple[bool, float]:
    import os

    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                          env={**os.environ, **env})
    applied, kept_mb = done.stdout.split()
    return applied == "True", float(kept_mb)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_pages_are_kept_and_reused():
    applied, kept_mb = probe("keep")
    if not applied:
        pytest.skip("this Linux's C library is not glibc (no mallopt to set)")
    assert kept_mb > 30  # the freed 40 MB stay resident, for the next array
    default_applied, default_kept_mb = probe("default")
    assert not default_applied and default_kept_mb < 10  # glibc's default: returned to the kernel at once


def test_the_environment_switch_leaves_the_default():
    applied, _ = probe("keep", PHARMACY_PLANNER_MALLOC="default")
    assert not applied
