"""The connection to a Ray cluster (``FMHUB_RAY_ADDRESS``), shared by the ``ray`` runner and the
``ray`` serving backend. ``ray`` is imported here only when a Ray job or deployment needs it.

fmhub never starts a Ray cluster itself: it connects to one its operator started (``ray start
--head``), so it never opens Ray's dashboard or job-submission API (both without authentication)
on any address.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from fmhub.errors import ComputeUnavailableError

CONNECT_TIMEOUT_S = 30.0
"""How long :func:`connect` waits for ``ray.init`` once the cluster's port answers."""

PROBE_TIMEOUT_S = 3.0
"""How long :func:`connect` waits for the cluster's GCS port to accept a TCP connection."""

WATCH_EVERY_S = 2.0
"""Seconds between two looks, while connected, at whether the cluster's head still answers."""

LOST_AFTER_S = 10.0
"""A head that has not answered for this long is taken as gone: the connection is dropped, so Ray
does not end this process (a driver whose head stays away 60 s is terminated by Ray)."""

_LOCK = threading.Lock()
_CONNECTED: str | None = None
_LOST: str | None = None


RayUnavailableError = ComputeUnavailableError
"""No Ray cluster is configured, Ray is not installed, or the configured cluster does not answer."""

NO_CLUSTER_HINT = ("start a cluster (`ray start --head --node-ip-address=127.0.0.1` on one machine) and set "
                   "FMHUB_RAY_ADDRESS=HOST:6379 for fmhub serve and fmhub worker (README: Scale out on Ray)")


def configured_address() -> str | None:
    """The cluster address fmhub is configured with (``FMHUB_RAY_ADDRESS``), or None."""
    from fmhub.config import get_settings

    return get_settings().ray_address or None


def _split(address: str) -> tuple[str, int]:
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailableError(f"FMHUB_RAY_ADDRESS '{address}' is not HOST:PORT",
                                  hint="give the address `ray start --head` printed, e.g. 127.0.0.1:6379")
    return host.strip("[]"), int(port)


def probe(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Whether the cluster's GCS port accepts a TCP connection: None when it does, else why not.

    ``ray.init`` on an address nobody listens on retries for minutes; this answers in
    ``timeout_s`` seconds at most.
    """
    host, port = _split(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"


LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray replaces a loopback cluster address with the machine's own address unless this is ``0``
(Ray's single-machine setting); :func:`connect` sets it for a ``127.0.0.1`` cluster."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _keep_loopback() -> None:
    """Make Ray dial a loopback address as given (see :data:`LOOPBACK_ENV`)."""
    os.environ[LOOPBACK_ENV] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:  # ray was imported before: its constant was read already
        constants.ENABLE_RAY_CLUSTER = False


def _no_auto_start() -> None:
    """Make sure no Ray call of this process starts a local Ray instance by itself (Ray does so on
    a first ``.remote()`` without a connection, dashboard included)."""
    os.environ["RAY_ENABLE_AUTO_CONNECT"] = "0"
    hook = sys.modules.get("ray._private.auto_init_hook")
    if hook is not None:  # read at import: set it again for an imported ray
        hook.enable_auto_connect = False


def connect(address: str | None = None, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
    """Connect this process to the Ray cluster (once; later calls return at once while connected).

    Args:
        address: ``HOST:PORT`` of the head's GCS (default ``FMHUB_RAY_ADDRESS``).
        timeout_s: Seconds ``ray.init`` may take once the port answers.

    Returns:
        The address connected to.

    Raises:
        RayUnavailableError: no address configured, ray not installed, the port does not answer,
            or ``ray.init`` failed or took longer than ``timeout_s``.
    """
    global _CONNECTED, _LOST
    address = address or configured_address()
    if not address:
        raise RayUnavailableError("no Ray cluster is configured (FMHUB_RAY_ADDRESS is not set)",
                                  hint=NO_CLUSTER_HINT)
    host, _ = _split(address)
    with _LOCK:
        if _is_loopback(host):
            _keep_loopback()
        _no_auto_start()
        try:
            import ray
        except ImportError:
            raise RayUnavailableError("Ray is not installed", hint="pip install 'fmhub[ray]'") from None
        if _CONNECTED == address and ray.is_initialized():
            return address
        why = probe(address)
        if why is not None:
            raise RayUnavailableError(f"the Ray cluster at {address} does not answer ({why})",
                                      hint="check that its head runs (`ray status --address "
                                           f"{address}`) and that FMHUB_RAY_ADDRESS is right")
        if ray.is_initialized():
            ray.shutdown()
        outcome: dict[str, Any] = {}

        def _init() -> None:
            try:
                ray.init(address=address, logging_level="WARNING", log_to_driver=False,
                         include_dashboard=False)
            except BaseException as exc:  # noqa: BLE001 - reported to the caller
                outcome["error"] = exc

        thread = threading.Thread(target=_init, name="fmhub-ray-init", daemon=True)
        thread.start()
        thread.join(timeout_s)
        if thread.is_alive():
            raise RayUnavailableError(f"connecting to the Ray cluster at {address} took over {timeout_s:.0f} s",
                                      hint="check the cluster (`ray status`), that this machine can reach "
                                           "every port of its head, and, for a cluster with token "
                                           "authentication, that this process has its token (RAY_AUTH_MODE=token "
                                           "with RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)")
        if "error" in outcome:
            exc = outcome["error"]
            raise RayUnavailableError(f"could not connect to the Ray cluster at {address}: "
                                      f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                                      hint="check the cluster (`ray status`), that fmhub and the cluster run "
                                           "the same Ray and Python versions, and, for a cluster with token "
                                           "authentication, that this process has its token (RAY_AUTH_MODE=token "
                                           "with RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)") from None
        _CONNECTED = address
        _LOST = None
        threading.Thread(target=_watch, args=(address,), name="fmhub-ray-watch", daemon=True).start()
        return address


def _watch(address: str) -> None:
    """While connected to ``address``: drop the connection once the head has not answered for
    :data:`LOST_AFTER_S` seconds (see :func:`lost_reason`)."""
    import time

    silent_since: float | None = None
    while _CONNECTED == address:
        time.sleep(WATCH_EVERY_S)
        why = probe(address, timeout_s=1.0)
        if why is None:
            silent_since = None
            continue
        silent_since = silent_since or time.monotonic()
        if time.monotonic() - silent_since >= LOST_AFTER_S:
            global _LOST
            _LOST = f"the Ray cluster at {address} does not answer any more ({why})"
            disconnect()
            return


def lost_reason() -> str | None:
    """Why the last connection was dropped because its cluster went away (None: it was not)."""
    return _LOST


def connected() -> bool:
    """Whether this process holds a live connection made by :func:`connect`."""
    if _CONNECTED is None:
        return False
    import ray

    return ray.is_initialized()


@dataclass(frozen=True)
class ClusterResources:
    """What a Ray cluster offers.

    Attributes:
        address: The head's address.
        nodes: Live nodes.
        cpus: Logical CPUs in all.
        gpus: GPUs in all.
        custom: Other resources (``{"special": 1.0}``), without Ray's ``node:`` and memory entries.
        gpu_names: ``accelerator_type:*`` entries named (``A100``), where nodes report them.
    """

    address: str
    nodes: int
    cpus: float
    gpus: float
    custom: dict[str, float] = field(default_factory=dict)
    gpu_names: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """``Ray cluster 127.0.0.1:6379: 2 nodes, 4 CPUs, 0 GPUs``."""
        text = (f"Ray cluster {self.address}: {self.nodes} node{'s' * (self.nodes != 1)}, "
                f"{self.cpus:g} CPUs, {self.gpus:g} GPUs")
        if self.gpu_names:
            text += f" ({', '.join(self.gpu_names)})"
        return text


_INTERNAL = ("node:", "accelerator_type:")
_MEMORY = ("memory", "object_store_memory")


def cluster_resources(address: str | None = None) -> ClusterResources:
    """Connect (see :func:`connect`) and sum the resources of the cluster's live nodes.

    Raises:
        RayUnavailableError: as :func:`connect`.
    """
    import ray

    address = connect(address)
    total = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    custom = {k: float(v) for k, v in total.items()
              if k not in ("CPU", "GPU", *_MEMORY) and not k.startswith(_INTERNAL)}
    names = sorted({k.split(":", 1)[1] for k in total if k.startswith("accelerator_type:")})
    return ClusterResources(address=address, nodes=len(nodes), cpus=float(total.get("CPU", 0)),
                            gpus=float(total.get("GPU", 0)), custom=custom, gpu_names=names)


def disconnect() -> None:
    """Drop this process's connection (tests; a server shutting down)."""
    global _CONNECTED
    with _LOCK:
        if _CONNECTED is not None:
            import ray

            ray.shutdown()
        _CONNECTED = None


__all__ = ["ClusterResources", "RayUnavailableError", "cluster_resources", "configured_address", "connect",
           "connected", "disconnect", "lost_reason", "probe"]
