"""A background loop: call a function every few seconds in a daemon thread until stopped.

Services hold no threads of their own; a service that must run periodically (the job scheduler's
pass) is driven by one of these.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("fmhub.loop")


class PeriodicLoop:
    """Calls ``step`` every ``interval_s`` seconds in a daemon thread.

    An exception in one call is logged with its traceback and the loop goes on (a database hiccup
    must not end it).

    Args:
        step: The function to call (no arguments).
        interval_s: Seconds between the end of one call and the start of the next.
        name: The thread's name (shown in stack dumps).
    """

    def __init__(self, step: Callable[[], None], interval_s: float, name: str = "fmhub-loop") -> None:
        self.step = step
        self.interval_s = interval_s
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # noqa: BLE001 - one failed pass must not end the loop
                log.exception("%s: pass failed", self.name)
            self._stop.wait(self.interval_s)

    def start(self) -> PeriodicLoop:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def is_alive(self) -> bool:
        """Whether the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the loop to end and wait up to ``timeout_s`` seconds for the current call to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)


def run_in_thread(step: Callable[[], None], interval_s: float, name: str = "fmhub-loop") -> PeriodicLoop:
    """Start a :class:`PeriodicLoop` calling ``step`` every ``interval_s`` seconds; returns it."""
    return PeriodicLoop(step, interval_s, name).start()


__all__ = ["PeriodicLoop", "run_in_thread"]
