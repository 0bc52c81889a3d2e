"""The ``ray`` serving backend: each deployment is one Ray Serve application on the cluster at
``FMHUB_RAY_ADDRESS`` (see :mod:`fmhub.raycluster`), its replicas running
:class:`fmhub.serving.ray_replica.FmhubReplica` (``@serve.batch`` around the task's decode ->
predict -> encode), autoscaled between the deployment's ``min_replicas`` and ``max_replicas``.

fmhub's server stays the only door: the applications get no HTTP route and Serve runs no HTTP
proxy (``proxy_location="Disabled"``); the server checks keys, limits and traffic, and calls each
application's ``DeploymentHandle``. Ray is imported only when a ``ray`` deployment starts.

Autoscaling (:data:`AUTOSCALING`): Serve aims at ``target_ongoing_requests`` = 2 requests in flight
per replica, measured every second over a 5 s window; it adds replicas after 3 s above the target
and removes them after 15 s below it, so a burst of load gives a second replica within about 10 s
and an idle deployment is back at ``min_replicas`` within about 25 s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from fmhub.entities import Deployment
from fmhub.serving.base import BatchFailed, InputFailed, InstanceGone, NoInstance, Notify, QueueFull

log = logging.getLogger("fmhub.serving")

AUTOSCALING: dict[str, float] = {"target_ongoing_requests": 2, "metrics_interval_s": 1.0,
                                 "look_back_period_s": 5.0, "upscale_delay_s": 3.0, "downscale_delay_s": 15.0}
"""Serve autoscaling settings of every ``ray`` deployment (besides its replica bounds); see the
module docstring."""

STATUS_POLL_S = 1.0
"""How often the state of the running applications is read from Serve (``show`` reads the copy)."""

APP_PREFIX = "fmhub."
"""Serve application names are ``fmhub.<endpoint>.<deployment>`` (neither name holds a dot)."""

_STATES = {"NOT_STARTED": "creating", "DEPLOYING": "creating", "RUNNING": "ready", "DEPLOY_FAILED": "failed",
           "UNHEALTHY": "failed", "DELETING": "stopped"}


def app_name(endpoint: str, name: str) -> str:
    """The Serve application of deployment ``name`` of ``endpoint``."""
    return f"{APP_PREFIX}{endpoint}.{name}"


def runtime_env() -> dict[str, Any]:
    """The replicas' runtime environment: offline Hugging Face libraries. Replicas import the fmhub
    installed on the cluster's nodes (the same version as the server: README, Scale out on Ray), as
    Ray jobs do."""
    return {"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}}


def actor_options(deployment: Deployment) -> dict[str, Any]:
    """Resources of one replica: one GPU for ``device: cuda``, one CPU otherwise."""
    if deployment.device.startswith("cuda"):
        return {"num_gpus": 1, "num_cpus": 1}
    return {"num_cpus": 1}


@dataclass
class RayDeployment:
    """A ``ray`` deployment of this server: its record, Serve application and last known state."""

    record: Deployment
    app: str
    handle: Any = None
    starting: asyncio.Task | None = None
    state: str = "creating"
    error: str | None = None
    replicas: int = 0
    runtime_detail: str | None = None
    requests: int = 0
    inputs: int = 0

    def status(self) -> dict[str, Any]:
        """State for ``show``: ``state``, ``error``, ``runtime_detail``, ``replicas`` (``running``,
        ``min``, ``max``), ``requests`` and ``inputs`` answered through this server."""
        return {"state": self.state, **({"error": self.error} if self.error else {}),
                "runtime_detail": self.runtime_detail,
                "replicas": {"running": self.replicas, "min": self.record.min_replicas or 1,
                             "max": self.record.max_replicas or self.record.min_replicas or 1},
                "processes": [], "batches": None, "mean_batch_size": None, "queued": None,
                "requests": self.requests, "inputs": self.inputs, "serve_application": self.app}


class RayServeBackend:
    """Deployments as Ray Serve applications.

    Args:
        resolve_files: Given to each replica: turns the model version's artifact URL into a local
            folder on the replica's node (None: the model path the server passes is a local folder
            every node can read, as on one machine).
        address: The cluster (default ``FMHUB_RAY_ADDRESS``).

    Attributes:
        live: This server's ``ray`` deployments by ``(endpoint, name)``.
        loads_from_store: True when replicas resolve artifact URLs themselves (``start`` then
            receives the version's URL, not a local path).
    """

    name = "ray"

    def __init__(self, resolve_files: Any = None, address: str | None = None) -> None:
        self.resolve_files = resolve_files
        self.loads_from_store = resolve_files is not None
        self.address = address
        self.live: dict[tuple[str, str], RayDeployment] = {}
        self._poller: asyncio.Task | None = None
        self._serve_started = False

    # -- lifecycle -------------------------------------------------------------------------------
    def _connect(self) -> None:
        """Connect to the cluster and start Serve without HTTP proxies (blocking; run in a thread).

        Raises:
            ComputeUnavailableError: see :func:`fmhub.raycluster.connect`.
        """
        from fmhub import raycluster

        raycluster.connect(self.address)
        if not self._serve_started:
            from ray import serve

            # No proxy: the applications are reached through handles from this server only.
            serve.start(proxy_location="Disabled", http_options={"host": "127.0.0.1"})
            self._serve_started = True

    def _run(self, live: RayDeployment, model_path: str) -> Any:
        """Deploy the application and wait until its replicas run (blocking; run in a thread)."""
        self._connect()
        from ray import serve

        from fmhub.serving.ray_replica import FmhubReplica

        d = live.record
        lo = d.min_replicas or 1
        hi = max(d.max_replicas or lo, lo)
        options: dict[str, Any] = {
            "name": "replica", "ray_actor_options": {**actor_options(d), "runtime_env": runtime_env()},
            "max_ongoing_requests": max(2 * d.max_batch_size, 8), "max_queued_requests": d.max_queue,
            "health_check_period_s": 5.0, "health_check_timeout_s": 30.0, "graceful_shutdown_timeout_s": 5.0}
        if hi > lo:
            options["autoscaling_config"] = {"min_replicas": lo, "max_replicas": hi, "initial_replicas": lo,
                                             **AUTOSCALING}
        else:
            options["num_replicas"] = lo
        config = {"model_path": model_path, "task": d.task, "device": d.device, "runtime": d.runtime,
                  "threads": 1, "max_batch_size": d.max_batch_size, "max_batch_wait_ms": d.max_batch_wait_ms}
        app = serve.deployment(FmhubReplica).options(**options).bind(config, self.resolve_files)
        handle = serve.run(app, name=live.app, route_prefix=None, blocking=False)
        info = handle.info.remote().result(timeout_s=60)
        return handle, info

    async def start(self, deployment: Deployment, model_path: str, notify: Notify) -> None:
        """Deploy the application (replacing a running one of that name); returns at once, the
        replicas start in the background (:meth:`wait_ready` waits for them)."""
        await self.stop(deployment.endpoint, deployment.name, delete=False)
        live = RayDeployment(deployment, app_name(deployment.endpoint, deployment.name))
        self.live[(deployment.endpoint, deployment.name)] = live
        live.starting = asyncio.get_running_loop().create_task(self._start(live, model_path, notify))
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _start(self, live: RayDeployment, model_path: str, notify: Notify) -> None:
        import os

        t0 = time.monotonic()
        key = (live.record.endpoint, live.record.name)
        if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            notify(f"warning: {live.app} runs on a Ray cluster this server reaches without token authentication "
                   "(RAY_AUTH_MODE is not token): Serve replicas listen on every interface of their node; keep "
                   "the cluster on a private network (README: Scale out on Ray)")
        try:
            live.handle, info = await asyncio.to_thread(self._run, live, model_path)
        except Exception as exc:  # noqa: BLE001 - reported as the deployment's state
            live.state, live.error = "failed", _one_line(f"{type(exc).__name__}: {exc}")
            notify(f"Serve application {live.app} failed: {live.error}")
            return
        if key not in self.live:  # stopped while it deployed: leave no application behind
            await asyncio.to_thread(self._delete, live.app)
            return
        live.runtime_detail = info.get("runtime")
        if live.state == "creating":
            live.state = "ready"
        live.replicas = max(live.replicas, live.record.min_replicas or 1)
        notify(f"Serve application {live.app} ready in {time.monotonic() - t0:.1f} s: "
               f"{live.record.min_replicas or 1}..{live.record.max_replicas or 1} replica(s), {live.runtime_detail}")

    async def _poll(self) -> None:
        """Refresh the state and replica count of every application (while any runs here)."""
        while self.live:
            try:
                await asyncio.to_thread(self._refresh)
            except Exception:  # noqa: BLE001 - the next round tries again
                log.debug("reading the Serve status failed", exc_info=True)
            await asyncio.sleep(STATUS_POLL_S)

    def _refresh(self) -> None:
        from fmhub import raycluster

        if not raycluster.connected():  # never let a Serve call start a Ray instance of its own
            lost = raycluster.lost_reason()
            for live in self.live.values():
                if lost and live.handle is not None:  # the cluster went away: its applications with it
                    live.state, live.error, live.replicas, live.handle = "failed", lost, 0, None
            return
        from ray import serve

        applications = serve.status().applications
        for live in list(self.live.values()):
            if live.handle is None:
                continue
            app = applications.get(live.app)
            if app is None:
                live.state, live.error, live.replicas = "failed", "the Serve application is gone from the cluster", 0
                continue
            replica = app.deployments.get("replica")
            states = dict(replica.replica_states) if replica is not None else {}
            live.replicas = int(states.get("RUNNING", 0))
            state = _STATES.get(str(getattr(app.status, "value", app.status)), "creating")
            if state == "creating" and live.replicas:
                state = "ready"  # updating or scaling, still answering
            live.state = state
            message = (replica.message if replica is not None else "") or app.message
            live.error = _one_line(message) if state == "failed" and message else None

    async def wait_ready(self, endpoint: str, name: str, timeout_s: float) -> str | None:
        """None once the application runs; else its error, ``stopped``, or its state at the timeout."""
        live = self.live.get((endpoint, name))
        if live is None:
            return "stopped"
        if live.starting is not None:
            try:
                await asyncio.wait_for(asyncio.shield(live.starting), timeout_s)
            except asyncio.TimeoutError:
                return f"{live.state} after {timeout_s:.0f} s"
        if (endpoint, name) not in self.live:
            return "stopped"
        return None if live.state == "ready" else (live.error or live.state)

    def status(self, endpoint: str, name: str) -> dict[str, Any] | None:
        """See :meth:`RayDeployment.status` (None: not running here)."""
        live = self.live.get((endpoint, name))
        return live.status() if live is not None else None

    def running(self) -> list[tuple[str, str]]:
        """The deployments running here."""
        return list(self.live)

    async def score(self, endpoint: str, name: str, inputs: list[Any], params: dict[str, Any]) -> list[Any]:
        """Send the inputs to the application's handle (Serve picks a replica, which batches).

        Raises:
            NoInstance: not running here or not ready. QueueFull: more than ``max_queue`` requests
            wait for a replica. InstanceGone: the replica ended mid-request. InputFailed: inputs of
            this request failed alone. BatchFailed: the batch failed as a whole.
        """
        live = self.live.get((endpoint, name))
        if live is None:
            raise NoInstance(f"deployment {name} is not running")
        if live.handle is None:
            raise NoInstance(f"Serve application {live.app} is {live.state}"
                             + (f": {live.error}" if live.error else ""))
        from ray import exceptions as ray_errors
        from ray.serve import exceptions as serve_errors

        response = live.handle.score.remote(inputs, params)
        try:
            answer = await response
        except asyncio.CancelledError:
            response.cancel()
            raise
        except serve_errors.BackPressureError:
            raise QueueFull from None
        except (serve_errors.DeploymentUnavailableError, serve_errors.ReplicaUnavailableError) as exc:
            raise NoInstance(_one_line(str(exc))) from None
        except (ray_errors.ActorDiedError, ray_errors.ActorUnavailableError) as exc:
            raise InstanceGone(_one_line(str(exc))) from None
        except ray_errors.RayTaskError as exc:
            raise BatchFailed(_one_line(str(exc.cause if exc.cause is not None else exc))) from None
        live.requests += 1
        live.inputs += len(inputs)
        if "outputs" in answer:
            return answer["outputs"]
        if "failed" in answer:
            index, cause = answer["failed"][0]
            raise InputFailed(int(index), cause, len(answer["failed"]))
        raise BatchFailed(answer.get("batch_error") or "the replica gave no answer")

    async def stop(self, endpoint: str, name: str, delete: bool = True) -> None:
        """Delete the deployment's Serve application (no-op when not running here).

        Args:
            delete: False when the application is about to be replaced (``serve.run`` of the same
                name updates it in place).
        """
        live = self.live.pop((endpoint, name), None)
        if live is None:
            return
        # a deploy still in flight deletes its application itself when it ends (see _start)
        if delete:
            await asyncio.to_thread(self._delete, live.app)

    def _delete(self, app: str) -> None:
        from ray import serve

        try:
            self._connect()
            serve.delete(app)
        except Exception:  # noqa: BLE001 - a cluster gone takes its applications with it
            log.exception("deleting Serve application %s failed", app)

    async def shutdown(self) -> None:
        """Delete this server's applications (never those of other servers or other users)."""
        for endpoint, name in list(self.live):
            await self.stop(endpoint, name)
        if self._poller is not None:
            self._poller.cancel()


def _one_line(text: str, limit: int = 500) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


__all__ = ["AUTOSCALING", "RayDeployment", "RayServeBackend", "app_name", "runtime_env"]
