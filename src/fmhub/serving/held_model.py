"""One model held in a process between calls, used by one call at a time (:class:`HeldModel`).

``fmhub predict`` and ``POST /api/v1/models/{ref}/predict`` load a model in the calling process; a
server would otherwise load a copy per concurrent request (and run out of memory) and reload it for
every call. Endpoints, which batch concurrent requests, are the way to serve traffic.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class HeldModel:
    """The last model loaded, behind a lock.

    Args:
        wait_s: Longest a call waits for the one before it (seconds).
    """

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self._lock = threading.Lock()
        self._key: Any = None
        self._value: Any = None

    @contextmanager
    def use(self, key: Any, load: Callable[[], Any]) -> Iterator[Any]:
        """Hold the lock and yield the model of ``key`` (loaded with ``load()`` unless it is the
        one held; the one held before is dropped first, so that two never sit in memory).

        Raises:
            TimeoutError: another call held the lock for over ``wait_s``.
        """
        if not self._lock.acquire(timeout=self.wait_s):
            raise TimeoutError(f"another call held the model for over {self.wait_s:g} s")
        try:
            if self._key != key:
                self._key, self._value = None, None
                self._value = load()
                self._key = key
            yield self._value
        finally:
            self._lock.release()

    def drop(self) -> None:
        """Forget the model held (the next call loads again)."""
        with self._lock:
            self._key, self._value = None, None
