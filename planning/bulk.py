"""Building large plain-data structures (GeoJSON coordinate lists) without the cyclic garbage collector.

Python's collector runs every few hundred new containers and then walks every tracked object of the
process; next to a loaded assessment (about 160,000 objects on the demo) building the gap report's
coordinate lists (a million small lists) ran it thousands of times: ``ndarray.tolist`` of the demo's
polygon coordinates took 0.32 s with it and 0.05 s without. The lists built are acyclic, so reference
counting frees them; :func:`collector_paused` only defers the collector, which runs again afterwards.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (process-wide); it is re-enabled on exit if it
    was enabled on entry, so nested or concurrent uses (Streamlit threads) never leave it off."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
