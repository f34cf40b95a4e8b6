"""Memo: values derived from one immutable owner, built on first request and kept with it.

An :class:`~planning.assess.Assessment` or a :class:`~planning.network.WalkNetwork` is frozen, but some of
what is derived from it is costly (a polygon of a raster, the GeoJSON of a layer in one language, edge
samples at one spacing). Each owner carries one ``Memo``; a module asks it with
``owner.memo.get(key, build)``, naming its keys after itself (``"maps.classes.zh"``), so no module writes
another's attributes and every cached value is visible in one place (:meth:`Memo.keys`).

The values must depend on the owner alone (and the key), never on mutable outside state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any


class Memo:
    """A per-owner memo: ``get(key, build)`` returns the value built once for ``key``. Thread-safe: two
    threads asking for one key at once build it once (Streamlit serves sessions from threads)."""

    __slots__ = ("_values", "_lock", "_building")

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}

    @classmethod
    def holding(cls, values: dict[Hashable, Any]) -> Memo:
        """A memo starting with ``values`` (keys as :meth:`get`'s): what a new owner shares with an earlier
        one it is built from, when those values depend only on what the two have in common."""
        memo = cls()
        memo._values.update(values)
        return memo

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The value for ``key``, calling ``build()`` the first time."""
        try:
            return self._values[key]
        except KeyError:
            pass
        with self._lock:
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._values:
                self._values[key] = build()
        return self._values[key]

    def __getstate__(self) -> dict:
        """Pickled empty (a Dask task's input, a tile's saved state): derived values are rebuilt there."""
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def keys(self) -> list[Hashable]:
        """The keys built so far."""
        return list(self._values)

    def __repr__(self) -> str:
        return f"Memo({len(self._values)} values)"


class Deferred:
    """A value built once in a background thread when :meth:`start` is first called, and asked for
    without waiting: :meth:`ready` is None until it is built (or when building it failed: ``error``).

    The app uses it for what only makes later steps faster, never for what a page shows: the widest
    assessment that slider settings re-threshold (``assess(..., reuse=)`` gives equal results with or
    without it), started after the first page is drawn so that page does not wait for it."""

    __slots__ = ("_build", "_lock", "_thread", "_value", "error", "name")

    def __init__(self, build: Callable[[], Any], name: str = "deferred") -> None:
        self._build, self.name = build, name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._value: Any = None
        self.error: BaseException | None = None

    def start(self) -> Deferred:
        """Start building in a daemon thread, once; later calls do nothing. Returns self."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._value = self._build()
        except Exception as exc:  # kept for whoever asks; the caller goes on without the value
            self.error = exc

    def ready(self) -> Any:
        """The value when built, else None (not started, still building, or failed)."""
        return self._value

    def wait(self, timeout_s: float | None = None) -> Any:
        """The value, waiting up to ``timeout_s`` seconds for it (starting it if needed); None if not built."""
        thread = self.start()._thread
        thread.join(timeout_s)
        return self._value
