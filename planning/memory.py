"""How the process keeps the memory it frees: glibc's malloc told to reuse it instead of returning it.

An assessment of a large city allocates and frees arrays of tens of MB by the hundred (per service, per
rule, per chunk of cells). glibc serves every block above its mmap threshold (at most 32 MB) with fresh
pages from the kernel and unmaps them when freed, so the next array of that size is faulted in and
zeroed again. Measured on this project's 2-core virtual machine, 1,000,000-node city, warm assessment:
1.0-1.7 s of kernel time and 50,000-120,000 page faults per run (11.0-12.3 s in all); with large blocks
served from the heap and freed memory kept for reuse, 0.01 s of kernel time and 3,700 faults (9.2-9.4 s),
for a peak 100-150 MB higher (the heap keeps its high-water mark; ``benchmarks/bench_assess.py``).

:func:`keep_freed_memory` sets that (``mallopt``: ``M_MMAP_MAX`` 0, ``M_TRIM_THRESHOLD`` 2 GiB) for the
whole process, once; the command line, the app and the tiles' Dask tasks call it at start, a notebook may
(``planning.memory.keep_freed_memory()``). It does nothing off glibc (macOS, Windows, musl) or when the
environment says ``PHARMACY_PLANNER_MALLOC=default``. Python objects and results are unchanged: only where
the allocator takes its pages from.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading

#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
#: Free memory at the heap's top returned to the kernel only beyond this (bytes; mallopt takes an int).
TRIM_THRESHOLD_BYTES = 2**31 - 1
#: ``PHARMACY_PLANNER_MALLOC=default`` leaves glibc's own behaviour.
ENVIRONMENT_SWITCH = "PHARMACY_PLANNER_MALLOC"

_lock = threading.Lock()
_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Serve large blocks from the heap and keep freed memory for reuse (module docstring). Returns
    whether the setting is in force in this process; called again, it returns the first answer."""
    global _applied
    with _lock:
        if _applied is None:
            _applied = _apply()
        return _applied


def _apply() -> bool:
    if os.environ.get(ENVIRONMENT_SWITCH, "").strip().lower() == "default" or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - present in glibc only (musl has mallopt as a stub)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
