"""Serving endpoints in this server: endpoint keys, request checks and limits, and routing by
traffic, over the serving backend each deployment names (``local``: instance processes and
dynamic batching of this server, :mod:`fmhub.serving.local`; ``ray``: a Ray Serve application per
deployment, :mod:`fmhub.serving.ray_serve`).

One :class:`EndpointRuntime` lives in ``fmhub serve``; it runs the deployments this server owns
(:mod:`fmhub.services.deployment_owners`: every deployment runs on exactly one server sharing the
database) and answers ``POST /endpoints/{name}/score`` for every endpoint, forwarding a request
routed to another server's deployment to that server.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from fmhub.entities import Deployment
from fmhub.errors import (FmhubError, NotFoundError, OverloadedError, PayloadTooLargeError, ScoringTimeoutError,
                          SpecError, UnauthorizedError, UnavailableError)
from fmhub.serving.base import InputFailed, InstanceGone, NoInstance, QueueFull, ServingBackend
from fmhub.serving.local import LocalServingBackend
from fmhub.serving.ray_serve import RayServeBackend
from fmhub.serving.forward import FORWARDED_HEADER, ForwardFailed, Forwarder  # noqa: F401 - re-exported
from fmhub.services import endpoints as endpoints_service
from fmhub.services.context import Context
from fmhub.services.jobs import worker_id
from fmhub.services.models import resolve_model
from fmhub.services.scoring_request import MAX_INPUTS, parse_request  # noqa: F401 - re-exported
from fmhub.store import endpoint_logs_repo, owners_repo
from fmhub.tasks import get_task

log = logging.getLogger("fmhub.serving")

MAX_BODY_BYTES = 1 << 20
"""Largest scoring request body (1 MiB); larger ones answer 413."""

BACKENDS: dict[str, type] = {"local": LocalServingBackend, "ray": RayServeBackend}
"""The serving backend class for each deployment ``backend`` value."""


@dataclass
class LiveDeployment:
    """A deployment running in this server: its record (traffic share included) and its backend."""

    record: Deployment
    backend: ServingBackend

    def status(self) -> dict[str, Any]:
        """The backend's live state (``stopped`` when it no longer runs the deployment)."""
        return self.backend.status(self.record.endpoint, self.record.name) or {"state": "stopped"}


class EndpointRuntime:
    """The deployments this server runs.

    Args:
        ctx: Service context.
        threads_per_instance: Torch threads per CPU instance of the ``local`` backend (None: half
            the cores per instance).
        backends: The backend per name (default: made on first use from :data:`BACKENDS`).
        owner: This server's id as a deployment owner (default ``serve:<host>:<pid>``).
        owner_url: The URL other servers forward scoring requests to (``http://host:port``); None
            when no other server can reach this one.
    """

    ROUTES_TTL_S = 1.0
    """Seconds an endpoint's deployments and owners are taken from memory before being read again."""

    def __init__(self, ctx: Context, threads_per_instance: int | None = None,
                 backends: dict[str, ServingBackend] | None = None, owner: str | None = None,
                 owner_url: str | None = None) -> None:
        self.ctx = ctx
        self.threads = threads_per_instance
        self.backends: dict[str, ServingBackend] = dict(backends or {})
        self.owner = owner or worker_id("serve")
        self.owner_url = owner_url
        self.live: dict[tuple[str, str], LiveDeployment] = {}
        self._pending_logs: list[tuple[str, str, str]] = []
        self._request_window: dict[str, tuple[float, int, int]] = {}
        self._routes: dict[str, tuple[float, list[tuple[Deployment, owners_repo.Lease | None]]]] = {}
        self._route_reads: dict[str, asyncio.Future] = {}  # one database read per endpoint at a time
        self._deploy_locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self.forwarder = Forwarder()

    def backend(self, name: str) -> ServingBackend:
        """The serving backend ``name`` (made on first use).

        Raises:
            SpecError: no backend of that name (the message names the known ones).
        """
        if name not in self.backends:
            if name not in BACKENDS:
                raise SpecError(f"unknown serving backend '{name}'; this fmhub serves with: "
                                f"{', '.join(sorted(BACKENDS))}", hint="redeploy with backend local")
            if name == "local":
                self.backends[name] = LocalServingBackend(self.threads)
            elif name == "ray":
                from fmhub.services.replica_files import StoreFiles

                store = self.ctx.artifacts
                self.backends[name] = RayServeBackend(None if store.is_local else StoreFiles(store.url))
            else:
                self.backends[name] = BACKENDS[name]()
        return self.backends[name]

    def deploy_lock(self, endpoint: str) -> asyncio.Lock:
        """Deploys to one endpoint run one at a time."""
        return self._deploy_locks[endpoint]

    REQUEST_LINES_PER_WINDOW = 50
    """Error answers of one endpoint this server writes to its log per :attr:`REQUEST_WINDOW_S`;
    beyond, they are counted and one line says how many were left out."""

    REQUEST_WINDOW_S = 10.0

    def note(self, endpoint: str, message: str, kind: str = "lifecycle") -> None:
        """Append a line to the endpoint's log (``fmhub endpoints logs``).

        Args:
            endpoint: Endpoint name.
            message: One line.
            kind: ``lifecycle`` (deploys, instances, owners) or ``request`` (an error answer; at
                most :attr:`REQUEST_LINES_PER_WINDOW` per window are written, see
                :mod:`fmhub.store.endpoint_logs_repo` for why the kinds are kept apart).
        """
        now = time.monotonic()
        if kind == "request":
            start, written, dropped = self._request_window.get(endpoint, (now, 0, 0))
            if now - start >= self.REQUEST_WINDOW_S:
                if dropped:
                    self._append(endpoint, "request", f"{dropped} more error answers in {now - start:.0f} s "
                                                      f"were not written")
                start, written, dropped = now, 0, 0
            if written >= self.REQUEST_LINES_PER_WINDOW:
                self._request_window[endpoint] = (start, written, dropped + 1)
                return
            self._request_window[endpoint] = (start, written + 1, dropped)
        self._append(endpoint, kind, message)

    def _append(self, endpoint: str, kind: str, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        self._pending_logs.append((endpoint, kind, line))
        log.info("endpoint %s: %s", endpoint, message)

    def take_pending_logs(self) -> list[tuple[str, str, str]]:
        """The ``(endpoint, kind, line)`` triples not yet written to the database (the caller writes them)."""
        pending, self._pending_logs = self._pending_logs, []
        return pending

    def log_lines(self, endpoint: str) -> list[str]:
        """The endpoint's log as every server wrote it, plus this server's lines not yet written."""
        written = endpoint_logs_repo.tail(self.ctx.db_url, endpoint)
        return written + [line for e, _, line in list(self._pending_logs) if e == endpoint]

    # -- lifecycle ------------------------------------------------------------------------------
    async def start_all(self) -> None:
        """Start every recorded deployment no other live server runs (at server start)."""
        from fmhub.services import deployment_owners

        await deployment_owners.sync(self.ctx, self)

    async def start(self, deployment: Deployment) -> LiveDeployment:
        """Start (or restart) a deployment on its backend; returns at once, models load in the background.

        Raises:
            SpecError: an unknown backend. NotFoundError: the model is gone.
        """
        await self.stop(deployment.endpoint, deployment.name)
        backend = self.backend(deployment.backend)
        resolved = resolve_model(self.ctx, deployment.model)
        endpoint = deployment.endpoint
        model_path = str(resolved.path)
        if getattr(backend, "loads_from_store", False) and resolved.version is not None:
            model_path = resolved.version.path  # its replicas read the version from the artifact store
        options = {"base_model_path": str(resolved.base_path)} if getattr(resolved, "base_path", None) else {}
        await backend.start(deployment, model_path, lambda message: self.note(endpoint, message), **options)
        live = LiveDeployment(deployment, backend)
        self.live[(deployment.endpoint, deployment.name)] = live
        what = (f"{deployment.min_replicas}..{deployment.max_replicas} Ray Serve replica(s)" if deployment.backend == "ray"
                else f"{deployment.instances} instance(s)")
        self.note(deployment.endpoint, f"deployment {deployment.name}: starting {what} "
                                       f"of {deployment.model} ({deployment.runtime}, {deployment.device})")
        return live

    async def wait_ready(self, live: LiveDeployment, timeout_s: float) -> str | None:
        """Wait for a deployment's instances: None once all loaded the model, else why not."""
        return await live.backend.wait_ready(live.record.endpoint, live.record.name, timeout_s)

    async def stop(self, endpoint: str, name: str) -> None:
        """Stop a deployment (no-op when not running)."""
        live = self.live.pop((endpoint, name), None)
        if live is None:
            return
        await live.backend.stop(endpoint, name)
        self.note(endpoint, f"deployment {name} stopped")

    async def stop_endpoint(self, endpoint: str) -> None:
        """Stop every deployment of an endpoint."""
        for (ep, name) in list(self.live):
            if ep == endpoint:
                await self.stop(ep, name)

    async def shutdown(self) -> None:
        """Stop everything and release this server's deployments to the others (server shutdown)."""
        from fmhub.services import deployment_owners

        for endpoint, name in list(self.live):
            await self.stop(endpoint, name)
        for backend in self.backends.values():
            await backend.shutdown()
        try:
            await deployment_owners.release(self.ctx, self)
        except Exception:  # the database may be gone at shutdown; the leases then run out
            log.exception("releasing deployments failed")
        await self.forwarder.close()

    def status(self, endpoint: str) -> dict[str, Any]:
        """State of each deployment of ``endpoint``: this server's live ones in full; those another
        server runs as that server last recorded them (with ``owner`` and ``owner_url``);
        deployments nobody runs are left out (shown as ``stopped``)."""
        out: dict[str, Any] = {name: {**live.status(), "owner": self.owner, "owner_url": self.owner_url}
                               for (ep, name), live in self.live.items() if ep == endpoint}
        for lease in owners_repo.leases(self.ctx.db_url, endpoint):
            if lease.name not in out and lease.held() and lease.owner != self.owner:
                out[lease.name] = {"state": lease.live_state or "creating", "owner": lease.owner,
                                   "owner_url": lease.owner_url}
        return out

    def forget_keys(self, endpoint: str) -> None:
        """Kept for callers: keys are read from the database on every request, so a regenerated
        key works (and the old one stops working) on every server at once."""

    def forget_routes(self, endpoint: str | None = None) -> None:
        """Read an endpoint's (or every endpoint's) deployments, traffic and owners again on the next
        request (after a deploy, a traffic change or a lease change)."""
        if endpoint is None:
            self._routes.clear()
            self._route_reads.clear()
        else:
            self._routes.pop(endpoint, None)
            self._route_reads.pop(endpoint, None)  # a read in flight may predate the change

    # -- scoring --------------------------------------------------------------------------------
    def _check_key(self, endpoint: str, authorization: str | None) -> None:
        keys = endpoints_service.get_keys(self.ctx, endpoint)  # NotFoundError for an unknown endpoint
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or \
                not any(hmac.compare_digest(token, k) for k in (keys["primary_key"], keys["secondary_key"])):
            raise UnauthorizedError(f"endpoint '{endpoint}' needs its key",
                                    hint=f"send `Authorization: Bearer <key>`; see `fmhub endpoints keys {endpoint}`",
                                    headers={"WWW-Authenticate": "Bearer"})

    async def _targets(self, endpoint: str) -> list[tuple[Deployment, owners_repo.Lease | None]]:
        """The endpoint's deployments with their owners (read at most every :attr:`ROUTES_TTL_S`)."""
        cached = self._routes.get(endpoint)
        if cached is not None and time.monotonic() - cached[0] < self.ROUTES_TTL_S:
            return cached[1]
        # Requests that find the routes stale together share one read (under load hundreds arrive
        # in the same millisecond; each reading the database would cost more than scoring).
        reading = self._route_reads.get(endpoint)
        if reading is None:
            reading = asyncio.ensure_future(self._read_targets(endpoint))
            self._route_reads[endpoint] = reading
        try:
            targets = await asyncio.shield(reading)
        finally:
            if self._route_reads.get(endpoint) is reading and reading.done():
                del self._route_reads[endpoint]
                if not reading.cancelled() and reading.exception() is None:
                    self._routes[endpoint] = (time.monotonic(), reading.result())
        return targets

    async def _read_targets(self, endpoint: str) -> list[tuple[Deployment, owners_repo.Lease | None]]:
        """The endpoint's deployments and their owners' leases, from the database."""
        record = await asyncio.to_thread(endpoints_service.get_endpoint, self.ctx, endpoint)
        leases = {lease.name: lease
                  for lease in await asyncio.to_thread(owners_repo.leases, self.ctx.db_url, endpoint)}
        return [(d, leases.get(d.name)) for d in record.deployments]

    async def _route(self, endpoint: str, wanted: str | None,
                     forwarded: bool) -> tuple[Deployment, LiveDeployment | None, owners_repo.Lease | None]:
        """Pick the deployment for a request: ``(record, live here or None, its owner's lease)``."""
        targets = await self._targets(endpoint)
        if wanted:
            chosen = next(((d, lease) for d, lease in targets if d.name == wanted), None)
            if chosen is None:
                raise NotFoundError(f"endpoint '{endpoint}' runs no deployment '{wanted}'",
                                    hint=f"its deployments: {', '.join(sorted(d.name for d, _ in targets)) or 'none'}")
        else:
            weighted = [(d, lease) for d, lease in targets if d.traffic > 0]
            if not weighted:
                raise UnavailableError(f"endpoint '{endpoint}' has no deployment taking traffic",
                                       hint=f"deploy a model: fmhub endpoints deploy {endpoint} --model NAME:VERSION",
                                       headers={"Retry-After": "5"})
            chosen = random.choices(weighted, weights=[d.traffic for d, _ in weighted])[0]
        record, lease = chosen
        live = self.live.get((endpoint, record.name))
        if live is not None:
            return live.record.model_copy(update={"traffic": record.traffic}), live, lease
        remote = lease is not None and lease.held() and lease.owner != self.owner and lease.owner_url
        if forwarded or not remote:
            raise UnavailableError(f"deployment '{record.name}' of endpoint '{endpoint}' is not running on "
                                   f"{'this server' if forwarded else 'any server'} now",
                                   hint="retry in a few seconds: a server takes a deployment nobody runs within "
                                        "about 15 s; the endpoint log says more", headers={"Retry-After": "2"})
        return record, None, lease

    async def score(self, endpoint: str, body: bytes, authorization: str | None,
                    deployment: str | None = None, forwarded: bool = False) -> dict[str, Any]:
        """Answer a scoring request; every error answer of a known endpoint is written to its log.

        Args:
            endpoint: Endpoint name.
            body: The raw JSON body, in one of the layouts of :mod:`fmhub.services.scoring_request`
                (``{"input_data": [...], "params": {...}}``, ``{"inputs": "text"}`` ...).
            authorization: The ``Authorization`` header.
            deployment: Route to this deployment (the ``x-fmhub-deployment`` header), not by traffic.
            forwarded: The request was forwarded by another server (answer it here or not at all).

        Returns:
            ``{"deployment", "model", "task", "predictions": [...]}`` (one per input, in order).

        Raises:
            UnauthorizedError (401), NotFoundError (404), PayloadTooLargeError (413),
            SpecError (422, naming the field, or the input that failed: ``input_data[3]: ...``;
            its neighbours in the batch are answered), OverloadedError (429, Retry-After),
            UnavailableError (503), ScoringTimeoutError (504).
        """
        known = False
        try:
            await asyncio.to_thread(self._check_key, endpoint, authorization)
            known = True
            return await self._score(endpoint, body, authorization, deployment, forwarded)
        except FmhubError as exc:
            if getattr(exc, "forwarded", False):
                raise  # the owner wrote it to the endpoint's log
            if known or not isinstance(exc, NotFoundError):  # an unknown endpoint has no log
                self.note(endpoint, _one_line(f"request answered {exc.http_status} {exc.code}: {exc.message}"),
                          "request")
            raise
        except Exception as exc:
            if known:
                self.note(endpoint, _one_line(f"request answered 500: {type(exc).__name__}: {exc}"), "request")
            raise

    async def _score(self, endpoint: str, body: bytes, authorization: str | None, deployment: str | None,
                     forwarded: bool) -> dict[str, Any]:
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(f"request body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}",
                                       hint="send fewer or shorter inputs per request")
        record, live, lease = await self._route(endpoint, deployment, forwarded)
        if live is None:
            return await self._forward(endpoint, record, lease, body, authorization)
        from fmhub.serving.chat_dispatch import serves_conversations

        if serves_conversations(live.record.task):  # conversations: the cloud layout, continuous batching
            from fmhub.services.chat_serving import score_chat

            return await score_chat(self, live, endpoint, body)
        task = get_task(live.record.task)
        inputs, params, field = parse_request(task, body)
        out = {"deployment": live.record.name, "model": live.record.model, "task": task.name}
        if not inputs:
            return {**out, "predictions": []}
        timeout_s = live.record.request_timeout_ms / 1000.0
        try:
            predictions = await asyncio.wait_for(
                live.backend.score(live.record.endpoint, live.record.name, inputs, params), timeout_s)
        except QueueFull:
            raise OverloadedError(f"endpoint '{endpoint}' is at capacity ({live.record.max_queue} requests waiting)",
                                  hint="retry after the time in Retry-After, or add instances",
                                  headers={"Retry-After": "1"}) from None
        except asyncio.TimeoutError:
            raise ScoringTimeoutError(f"no answer within {live.record.request_timeout_ms:.0f} ms",
                                      hint="retry, send fewer inputs, or raise request_timeout_ms") from None
        except InputFailed as exc:
            more = f" ({exc.failed} inputs of this request failed)" if exc.failed > 1 else ""
            raise SpecError(f"{field}[{exc.index}]: the model could not score this input: {exc.cause}{more}",
                            hint="fix or leave out this input; the others of the request were not scored") from None
        except (InstanceGone, NoInstance) as exc:
            raise UnavailableError(f"deployment '{live.record.name}' cannot answer now: {exc}",
                                   hint="retry in a few seconds; the endpoint log says more",
                                   headers={"Retry-After": "2"}) from None
        except RuntimeError as exc:  # BatchFailed, or an error the instance reported for the whole batch
            raise UnavailableError(f"deployment '{live.record.name}' failed on this batch: {exc}",
                                   hint="retry; if it persists, check the deployment (the endpoint log has "
                                        "the error)", headers={"Retry-After": "1"}) from None
        return {**out, "predictions": predictions}

    async def _forward(self, endpoint: str, record: Deployment, lease: owners_repo.Lease, body: bytes,
                       authorization: str | None) -> dict[str, Any]:
        """Pass a request on to the server that runs ``record``; its answer (or error) is ours."""
        try:
            status, payload, headers = await self.forwarder.score(
                lease.owner_url, endpoint, record.name, body, authorization, record.request_timeout_ms / 1000.0 + 5.0)
        except ForwardFailed as exc:
            self.forget_routes(endpoint)
            raise UnavailableError(f"deployment '{record.name}' runs on {exc.owner_url}, which did not answer: "
                                   f"{exc.cause}", hint="retry in a few seconds: when a server is gone, another "
                                   "takes its deployments over", headers={"Retry-After": "2"}) from None
        if status == 200 and isinstance(payload, dict) and "predictions" in payload:
            return payload
        body_error = payload.get("error") if isinstance(payload, dict) else None
        body_error = body_error if isinstance(body_error, dict) else {}
        error = FmhubError(str(body_error.get("message") or f"the owning server answered {status}"),
                           hint=str(body_error.get("hint") or ""), headers=headers or None)
        error.code = str(body_error.get("code") or "forwarded_error")
        error.http_status = status if 400 <= status < 600 else 502
        error.forwarded = True
        raise error


def _one_line(text: str, limit: int = 1000) -> str:
    """``text`` on one line (a request's text cannot start a log line of its own), cut at ``limit``."""
    flat = " ".join(text.splitlines())
    return flat if len(flat) <= limit else flat[:limit] + "..."
