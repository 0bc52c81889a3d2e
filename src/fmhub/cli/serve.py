"""``fmhub serve`` (REST API + job scheduler) and ``fmhub worker`` (a scheduler alone)."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

import typer

from fmhub.cli.common import context, err, handle_errors
from fmhub.errors import SpecError


def _options(cpu_slots: int, gpu_slots: int, max_restarts: int, poll_s: float):
    from fmhub.services.scheduler import SchedulerOptions

    return SchedulerOptions(cpu_slots=cpu_slots, gpu_slots=gpu_slots, max_restarts=max_restarts, poll_s=poll_s)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("alembic").setLevel(logging.WARNING)


CPU_SLOTS = typer.Option(1, "--cpu-slots", min=1, help="Jobs at once on the CPU (a fine-tune uses every core).")
GPU_SLOTS = typer.Option(1, "--gpu-slots", min=1, help="Jobs at once per GPU.")
MAX_RESTARTS = typer.Option(2, "--max-restarts", min=0, help="Times a job whose process was lost is resumed before it is marked failed.")
POLL_S = typer.Option(1.0, "--poll-s", min=0.05, help="Seconds between looks at the job queue.")

# Host check and request limits (fmhub.api.security, fmhub.api.limits)
ALLOWED_HOST = typer.Option(None, "--allowed-host", metavar="NAME",
                            help="Another host name the server answers to (repeatable; '*' for any). By default it "
                                 "answers only to localhost, 127.0.0.1, ::1 and its --host address.")
MAX_BODY_MB = typer.Option(4.0, "--max-body-mb", min=0.01, help="Largest request body in MiB (uploads aside): larger is 413.")
MAX_UPLOAD_MB = typer.Option(512.0, "--max-upload-mb", min=0.01, help="Largest data file upload in MiB: larger is 413.")
# Data roots: the folders the server reads user files from (job specs, data and import requests).
DATA_ROOT = typer.Option(
    None, "--data-root", metavar="FOLDER",
    help="A folder the server may read user files from; repeatable. Default: FMHUB_DATA_ROOTS, else "
         "the folder the server is started from. Its upload area and artifact store are always roots; "
         "a path outside answers 403 (upload the file instead).")


@handle_errors
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Anything but loopback requires API keys."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    require_api_key: bool = typer.Option(False, "--require-api-key", help="Require API keys on loopback too."),
    no_scheduler: bool = typer.Option(False, "--no-scheduler", help="Serve the API only; run jobs with `fmhub worker`."),
    cpu_slots: int = CPU_SLOTS,
    gpu_slots: int = GPU_SLOTS,
    max_restarts: int = MAX_RESTARTS,
    poll_s: float = POLL_S,
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level: debug, info, warning, error."),
    allowed_host: list[str] | None = ALLOWED_HOST,
    max_body_mb: float = MAX_BODY_MB,
    max_upload_mb: float = MAX_UPLOAD_MB,
    data_root: Optional[list[Path]] = DATA_ROOT,
    advertise_url: Optional[str] = typer.Option(
        None, "--advertise-url", metavar="URL",
        help="The URL other fmhub servers sharing this database use to pass on scoring requests for the "
             "deployments this server runs. Default: http://HOST:PORT (this machine's name when HOST is "
             "0.0.0.0 or ::)."),
) -> None:
    """Start the fmhub server: the web UI at / (catalog, fine-tune and evaluate wizards, jobs,
    endpoints, data), the REST API under /api/v1 (docs at /docs), /health, /ready, and the job
    scheduler. Jobs left running by a crashed server resume from their last checkpoint."""
    import uvicorn

    from fmhub.api.app import create_app
    from fmhub.api.auth import is_loopback
    from fmhub.services.scheduler import Scheduler

    _logging()
    _check_port_free(host, port)  # before any start-up work: a taken port is said at once
    ctx = context()
    from fmhub.services.health import check_artifact_store, prepare_database

    prepare_database(ctx)  # an unreachable database or an old schema is said in one line, before start-up
    check_artifact_store(ctx)  # so is a bucket store that is missing, refused or unreachable
    # Data roots: --data-root, else FMHUB_DATA_ROOTS, else this folder; plus uploads and artifacts.
    from fmhub.services.data_roots import DataRoots

    ctx.data_roots = DataRoots.for_server(ctx.settings, data_root or ())
    scheduler = None if no_scheduler else Scheduler(ctx, _options(cpu_slots, gpu_slots, max_restarts, poll_s),
                                                   role="serve")
    keys = require_api_key or not is_loopback(host)
    from fmhub.api.limits import RequestLimits
    from fmhub.api.security import SecurityOptions

    owner_url = advertise_url or _default_advertise_url(host, port)
    advertised_host = _advertised_host(owner_url)
    security = SecurityOptions(bound_host=host, allowed_hosts=(*(allowed_host or ()), advertised_host))
    limits = RequestLimits.from_mb(max_body_mb, max_upload_mb)
    app = create_app(ctx, require_api_key=keys, scheduler=scheduler, security=security, limits=limits,
                     advertise_url=owner_url)
    err.print(f"fmhub serving http://{host}:{port} (web UI at /, API at /api/v1, docs at /docs; API keys "
              f"{'required: sign in to the UI with one' if keys else 'not required on loopback'}; "
              f"state in {ctx.settings.home})", highlight=False)
    err.print(f"data roots (files the server reads): {ctx.data_roots.describe()}", highlight=False)
    from fmhub.api.limits import MAX_HEADER_BYTES

    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug",
                http="h11", h11_max_incomplete_event_size=MAX_HEADER_BYTES)  # bounded headers


def _advertised_host(url: str) -> str:
    """The host name of an ``--advertise-url``: a DNS name or an IP address, nothing else (it is
    added to the names the Host check accepts, so a pattern such as ``*`` must never get there).

    Raises:
        SpecError: not an http(s) URL with such a host.
    """
    import ipaddress
    import re

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        parts = None
    host = parts.hostname if parts is not None else None
    valid = bool(host) and (re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*"
                                         r"[A-Za-z0-9])?)*", host) is not None)
    if host and not valid:
        try:
            ipaddress.ip_address(host)
            valid = True
        except ValueError:
            pass
    if parts is None or parts.scheme not in ("http", "https") or not valid or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username or parts.password:
        raise SpecError(f"--advertise-url {url!r} is not an http(s) URL of a host name or IP address (and a port)",
                        hint="e.g. --advertise-url http://node-1.internal:8000")
    return host


def _default_advertise_url(host: str, port: int) -> str:
    """``http://HOST:PORT``; a wildcard address is replaced by this machine's name."""
    import socket

    name = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    return f"http://[{name}]:{port}" if ":" in name else f"http://{name}:{port}"


def _check_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` once and let it go.

    Raises:
        ConflictError: another process listens there (or the address is not this machine's).
    """
    import socket

    from fmhub.errors import ConflictError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConflictError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                                hint="another server holds this port: choose another --port, or stop that "
                                     "server first") from None


@handle_errors
def worker_cmd(
    cpu_slots: int = CPU_SLOTS,
    gpu_slots: int = GPU_SLOTS,
    max_restarts: int = MAX_RESTARTS,
    poll_s: float = POLL_S,
) -> None:
    """Run a job scheduler without the API: it starts queued jobs of this FMHUB_HOME /
    FMHUB_DATABASE_URL as subprocesses. Stop it with Ctrl-C (its running jobs are requeued)."""
    from fmhub.services.scheduler import Scheduler

    _logging()
    from fmhub.services.health import check_artifact_store, prepare_database

    ctx = context()
    prepare_database(ctx)  # an unreachable database or an old schema is said in one line
    check_artifact_store(ctx)  # so is a bucket store that is missing, refused or unreachable
    scheduler = Scheduler(ctx, _options(cpu_slots, gpu_slots, max_restarts, poll_s), role="worker")
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    scheduler.recover()
    scheduler.start()
    err.print(f"fmhub worker {scheduler.worker} running; Ctrl-C stops it", highlight=False)
    while not done.wait(1.0):
        if not scheduler.is_alive():
            break
    scheduler.stop()
