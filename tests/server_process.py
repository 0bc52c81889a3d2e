"""Start a real ``fmhub serve`` on 127.0.0.1 for integration tests (bounded waits, always stopped)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A running ``fmhub serve`` subprocess.

    Attributes:
        url: ``http://127.0.0.1:<port>``.
        popen: The process.
        log_path: Its stdout/stderr.

    Args:
        data_roots: ``--data-root`` folders; None (default) gives the folder holding ``home``, where
            the tests write their data files; ``()`` gives the server's own default (``cwd``).
        cwd: The folder the server is started from (default: the test's working folder).
    """

    def __init__(self, home: Path, port: int | None = None, extra_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, data_roots: tuple[Path, ...] | None = None,
                 cwd: Path | None = None) -> None:
        self.data_roots = (home.parent,) if data_roots is None else tuple(data_roots)
        self.cwd = cwd
        self.home = home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = extra_args
        self.env = {**os.environ, "FMHUB_HOME": str(home), "HF_HUB_OFFLINE": "1", **(env or {})}
        if os.environ.get("FMHUB_TEST_BACKEND", "") != "shared":  # else: the test's own PostgreSQL database
            self.env.pop("FMHUB_DATABASE_URL", None)
        self.log_path = home.parent / f"serve-{self.port}.log"
        self.popen: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60.0) -> "ServerProcess":
        """Start and wait until ``/health`` answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen([sys.executable, "-m", "fmhub", "serve", "--port", str(self.port),
                                       "--poll-s", "0.3", *self.extra_args,
                                       *(a for root in self.data_roots for a in ("--data-root", str(root)))],
                                      stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"fmhub serve exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"fmhub serve did not answer in {timeout_s} s: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the server (its job processes die with it)."""
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        """Graceful stop (SIGINT), then SIGKILL after 30 s."""
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def running_server(home: Path, **kwargs) -> Iterator[ServerProcess]:
    """``with running_server(tmp_path / "home") as server: ...`` — stopped on exit."""
    server = ServerProcess(home, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()
