"""Serving endpoints in this server: endpoint keys, request checks and limits, and routing by
traffic, over the serving backend each deployment names (``local``: instance processes and
dynamic batching of this server, :mod:`fmhub.serving.local`).

One :class:`EndpointRuntime` lives in ``fmhub serve``; it starts the deployments recorded in the
database when the server starts, and answers ``POST /endpoints/{name}/score``.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
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
from fmhub.services import endpoints as endpoints_service
from fmhub.services.context import Context
from fmhub.services.models import resolve_model
from fmhub.services.scoring_request import MAX_INPUTS, parse_request  # noqa: F401 - re-exported
from fmhub.tasks import get_task

log = logging.getLogger("fmhub.serving")

MAX_BODY_BYTES = 1 << 20
"""Largest scoring request body (1 MiB); larger ones answer 413."""

BACKENDS: dict[str, type] = {"local": LocalServingBackend}
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
    """

    def __init__(self, ctx: Context, threads_per_instance: int | None = None,
                 backends: dict[str, ServingBackend] | None = None) -> None:
        self.ctx = ctx
        self.threads = threads_per_instance
        self.backends: dict[str, ServingBackend] = dict(backends or {})
        self.live: dict[tuple[str, str], LiveDeployment] = {}
        self.logs: dict[str, collections.deque[str]] = collections.defaultdict(lambda: collections.deque(maxlen=500))
        self._keys: dict[str, tuple[float, tuple[str, str]]] = {}
        self._deploy_locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)

    def backend(self, name: str) -> ServingBackend:
        """The serving backend ``name`` (made on first use).

        Raises:
            SpecError: no backend of that name (the message names the known ones).
        """
        if name not in self.backends:
            if name not in BACKENDS:
                raise SpecError(f"unknown serving backend '{name}'; this fmhub serves with: "
                                f"{', '.join(sorted(BACKENDS))}", hint="redeploy with backend local")
            self.backends[name] = (LocalServingBackend(self.threads) if name == "local" else BACKENDS[name]())
        return self.backends[name]

    def deploy_lock(self, endpoint: str) -> asyncio.Lock:
        """Deploys to one endpoint run one at a time."""
        return self._deploy_locks[endpoint]

    def note(self, endpoint: str, message: str) -> None:
        """Append a line to the endpoint's log (``fmhub endpoints logs``)."""
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        self.logs[endpoint].append(line)
        log.info("endpoint %s: %s", endpoint, message)

    # -- lifecycle ------------------------------------------------------------------------------
    async def start_all(self) -> None:
        """Start every deployment recorded in the database (after a server restart)."""
        for endpoint in endpoints_service.list_endpoints(self.ctx):
            for deployment in endpoint.deployments:
                try:
                    await self.start(deployment)
                except Exception as exc:  # one broken deployment must not stop the server
                    self.note(endpoint.name, f"deployment {deployment.name} not started: {exc}")

    async def start(self, deployment: Deployment) -> LiveDeployment:
        """Start (or restart) a deployment on its backend; returns at once, models load in the background.

        Raises:
            SpecError: an unknown backend. NotFoundError: the model is gone.
        """
        await self.stop(deployment.endpoint, deployment.name)
        backend = self.backend(deployment.backend)
        resolved = resolve_model(self.ctx, deployment.model)
        endpoint = deployment.endpoint
        await backend.start(deployment, str(resolved.path), lambda message: self.note(endpoint, message))
        live = LiveDeployment(deployment, backend)
        self.live[(deployment.endpoint, deployment.name)] = live
        self.note(deployment.endpoint, f"deployment {deployment.name}: starting {deployment.instances} instance(s) "
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
        self._keys.pop(endpoint, None)

    async def shutdown(self) -> None:
        """Stop everything (server shutdown)."""
        for endpoint, name in list(self.live):
            await self.stop(endpoint, name)
        for backend in self.backends.values():
            await backend.shutdown()

    def status(self, endpoint: str) -> dict[str, Any]:
        """Live state of each deployment of ``endpoint`` (deployments not running: ``stopped``)."""
        return {name: live.status() for (ep, name), live in self.live.items() if ep == endpoint}

    def forget_keys(self, endpoint: str) -> None:
        """Drop cached keys (after a regeneration)."""
        self._keys.pop(endpoint, None)

    # -- scoring --------------------------------------------------------------------------------
    def _check_key(self, endpoint: str, authorization: str | None) -> None:
        cached = self._keys.get(endpoint)
        if cached is None or time.monotonic() - cached[0] > 5.0:
            keys = endpoints_service.get_keys(self.ctx, endpoint)  # NotFoundError for an unknown endpoint
            cached = (time.monotonic(), (keys["primary_key"], keys["secondary_key"]))
            self._keys[endpoint] = cached
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or \
                not any(hmac.compare_digest(token, k) for k in cached[1]):
            raise UnauthorizedError(f"endpoint '{endpoint}' needs its key",
                                    hint=f"send `Authorization: Bearer <key>`; see `fmhub endpoints keys {endpoint}`",
                                    headers={"WWW-Authenticate": "Bearer"})

    def _route(self, endpoint: str, wanted: str | None) -> LiveDeployment:
        running = {name: live for (ep, name), live in self.live.items() if ep == endpoint}
        if wanted:
            if wanted not in running:
                raise NotFoundError(f"endpoint '{endpoint}' runs no deployment '{wanted}'",
                                    hint=f"its deployments: {', '.join(sorted(running)) or 'none'}")
            return running[wanted]
        weighted = [(live, live.record.traffic) for live in running.values() if live.record.traffic > 0]
        if not weighted:
            raise UnavailableError(f"endpoint '{endpoint}' has no deployment taking traffic",
                                   hint=f"deploy a model: fmhub endpoints deploy {endpoint} --model NAME:VERSION",
                                   headers={"Retry-After": "5"})
        return random.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]

    async def score(self, endpoint: str, body: bytes, authorization: str | None,
                    deployment: str | None = None) -> dict[str, Any]:
        """Answer a scoring request; every error answer of a known endpoint is written to its log.

        Args:
            endpoint: Endpoint name.
            body: The raw JSON body, in one of the layouts of :mod:`fmhub.services.scoring_request`
                (``{"input_data": [...], "params": {...}}``, ``{"inputs": "text"}`` ...).
            authorization: The ``Authorization`` header.
            deployment: Route to this deployment (the ``x-fmhub-deployment`` header), not by traffic.

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
            self._check_key(endpoint, authorization)
            known = True
            return await self._score(endpoint, body, deployment)
        except FmhubError as exc:
            if known or not isinstance(exc, NotFoundError):  # an unknown endpoint has no log
                self.note(endpoint, _one_line(f"request answered {exc.http_status} {exc.code}: {exc.message}"))
            raise
        except Exception as exc:
            if known:
                self.note(endpoint, _one_line(f"request answered 500: {type(exc).__name__}: {exc}"))
            raise

    async def _score(self, endpoint: str, body: bytes, deployment: str | None) -> dict[str, Any]:
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(f"request body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}",
                                       hint="send fewer or shorter inputs per request")
        live = self._route(endpoint, deployment)
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


def _one_line(text: str, limit: int = 1000) -> str:
    """``text`` on one line (a request's text cannot start a log line of its own), cut at ``limit``."""
    flat = " ".join(text.splitlines())
    return flat if len(flat) <= limit else flat[:limit] + "..."
