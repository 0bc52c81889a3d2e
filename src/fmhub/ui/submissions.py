"""Submit once: each wizard page carries a one-time token (the hidden field ``wizard.submission``),
so a form sent twice (a double click, a resent request) queues its jobs once and both answers go
to the same page."""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable

TOKEN_FIELD = "wizard.submission"
TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")


def new_token() -> str:
    """A token for one wizard page (32 hex characters)."""
    return uuid.uuid4().hex


class SubmissionLog:
    """The pages the last ``size`` submissions led to, by token.

    Args:
        size: Tokens remembered (oldest forgotten first).
    """

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self._done: OrderedDict[str, str] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def once(self, token: str, submit: Callable[[], str]) -> str:
        """Run ``submit`` (which queues the jobs and returns the page to go to) once per token; a
        second call with the same token waits for the first and returns its page. A blank or
        malformed token runs ``submit`` unguarded. Blocking: call it from a worker thread.

        Raises:
            Whatever ``submit`` raises (a failed submission is not remembered: it can be sent again).
        """
        if not TOKEN_RE.match(token or ""):
            return submit()
        with self._guard:
            lock = self._locks.setdefault(token, threading.Lock())
        with lock:
            if token in self._done:
                return self._done[token]
            url = submit()
            with self._guard:
                self._done[token] = url
                while len(self._done) > self.size:
                    old, _ = self._done.popitem(last=False)
                    self._locks.pop(old, None)
            return url


SUBMISSIONS = SubmissionLog()
"""The server's log of wizard submissions (one server process answers the UI)."""
