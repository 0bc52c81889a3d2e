"""Endpoint use cases that change both the records and the deployments running in this server:
show, deploy, undeploy, split traffic, regenerate keys, delete. The REST API and the web UI both
call these.

Each takes the server's :class:`~fmhub.services.serving.EndpointRuntime`, or None in an app that
does not serve endpoints (then only the records change and every deployment shows ``stopped``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fmhub.entities import Endpoint
from fmhub.errors import NotFoundError, SpecError
from fmhub.services import deployment_owners
from fmhub.services import endpoints as endpoints_service
from fmhub.services.context import Context
from fmhub.services.specs import DeploymentSpec

READY_TIMEOUT_S = 600.0
"""How long a deployment's instances may take to load their model."""

_settling: set[asyncio.Task] = set()  # deployments loading in the background (kept from the GC)


def describe(runtime: Any, endpoint: Endpoint, base_url: str) -> dict[str, Any]:
    """An endpoint as the API shows it: its record, each deployment's live state and the scoring URI.

    Args:
        runtime: The server's runtime, or None.
        endpoint: The endpoint record.
        base_url: The server's URL (``http://host:port``) the scoring URI starts with.

    Returns:
        The endpoint's fields, ``deployments`` (each with ``state``: ``creating``, ``ready``,
        ``failed`` or ``stopped``, and its processes) and ``scoring_uri``.
    """
    live = runtime.status(endpoint.name) if runtime is not None else {}
    deployments = [{**d.model_dump(mode="json"), **(live.get(d.name) or {"state": "stopped"})}
                   for d in endpoint.deployments]
    return {**endpoint.model_dump(mode="json"), "deployments": deployments,
            "scoring_uri": f"{base_url.rstrip('/')}/endpoints/{endpoint.name}/score"}


async def deploy(ctx: Context, runtime: Any, endpoint: str, spec: DeploymentSpec, *,
                 wait: bool = True) -> Endpoint:
    """Record a deployment and start its instances.

    Deploys to one endpoint take turns. A deployment whose instances do not all load is stopped
    and removed (nothing is deployed) and the endpoint's log says why.

    Args:
        ctx: Service context.
        runtime: The server's runtime, or None (the deployment is only recorded).
        endpoint: Endpoint name.
        spec: What to deploy.
        wait: Return once every instance has loaded the model (raising when one did not); with
            False, return as soon as the instances are starting (state ``creating``) and let them
            load in the background.

    Returns:
        The endpoint after the change.

    Raises:
        NotFoundError: no such endpoint or model. SpecError: the deployment is refused before
        anything starts (task, head, device, runtime), or (``wait``) its instances did not load.
    """
    if runtime is None:
        await asyncio.to_thread(endpoints_service.plan_deployment, ctx, endpoint, spec)
        return endpoints_service.get_endpoint(ctx, endpoint)
    async with runtime.deploy_lock(endpoint):
        deployment = await asyncio.to_thread(endpoints_service.plan_deployment, ctx, endpoint, spec)
        await deployment_owners.take(ctx, runtime, endpoint, deployment.name)
        live = await runtime.start(deployment)
        if wait:
            error = await _settle(ctx, runtime, live)
            if error is not None:
                raise SpecError(f"deployment '{deployment.name}' of {deployment.model} did not start: {error}",
                                hint="nothing was deployed; see the endpoint log")
    if not wait:
        task = asyncio.get_running_loop().create_task(_settle(ctx, runtime, live))
        _settling.add(task)
        task.add_done_callback(_settling.discard)
    return endpoints_service.get_endpoint(ctx, endpoint)


async def _settle(ctx: Context, runtime: Any, live: Any) -> str | None:
    """Wait for a deployment's instances; when one did not load, stop the deployment and remove
    its record, unless it was replaced or removed meanwhile. Returns the error, or None."""
    error = await runtime.wait_ready(live, READY_TIMEOUT_S)
    if error is None:
        return None
    endpoint, name = live.record.endpoint, live.record.name
    if runtime.live.get((endpoint, name)) is live:
        await runtime.stop(endpoint, name)
        try:
            await asyncio.to_thread(endpoints_service.delete_deployment, ctx, endpoint, name)
        except NotFoundError:
            pass
        runtime.note(endpoint, f"deployment {name} of {live.record.model} did not start: {error}; "
                               "it was removed")
    return error


async def undeploy(ctx: Context, runtime: Any, endpoint: str, deployment: str) -> Endpoint:
    """Stop a deployment's instances and delete it (raises ``NotFoundError``)."""
    changed = endpoints_service.delete_deployment(ctx, endpoint, deployment)
    if runtime is not None:
        await runtime.stop(endpoint, deployment)
        _route_live(runtime, endpoint, changed)  # the deleted share went to the others
        runtime.forget_routes(endpoint)
    return changed


async def delete(ctx: Context, runtime: Any, endpoint: str) -> None:
    """Stop every deployment of an endpoint and delete it (raises ``NotFoundError``)."""
    endpoints_service.get_endpoint(ctx, endpoint)
    if runtime is not None:
        await runtime.stop_endpoint(endpoint)
        runtime.forget_routes(endpoint)
    endpoints_service.delete_endpoint(ctx, endpoint)
    endpoints_service.remove_log(ctx, endpoint)


def route_traffic(ctx: Context, runtime: Any, endpoint: str, traffic: dict[str, int]) -> Endpoint:
    """Set the traffic split (see :func:`fmhub.services.endpoints.set_traffic`) and route by it at once.

    Raises:
        SpecError: unknown deployments, values outside 0..100 or a sum other than 100.
    """
    changed = endpoints_service.set_traffic(ctx, endpoint, traffic)
    if runtime is not None:
        _route_live(runtime, endpoint, changed)
        runtime.forget_routes(endpoint)
    return changed


def _route_live(runtime: Any, endpoint: str, changed: Endpoint) -> None:
    """Give the running deployments the traffic shares recorded in ``changed``."""
    for d in changed.deployments:
        live = runtime.live.get((endpoint, d.name))
        if live is not None:
            live.record = live.record.model_copy(update={"traffic": d.traffic})


def regenerate_key(ctx: Context, runtime: Any, endpoint: str, which: str = "primary") -> dict[str, str]:
    """Replace the ``primary`` or ``secondary`` key; the old one stops working at once.

    Returns:
        ``{"primary_key", "secondary_key"}``.
    """
    out = endpoints_service.regenerate_key(ctx, endpoint, which)
    if runtime is not None:
        runtime.forget_keys(endpoint)
    return out


def logs(ctx: Context, runtime: Any, endpoint: str) -> list[str]:
    """The endpoint's log (instance starts, loads, failures, restarts, and every error answer of its
    scoring URL with the cause; the last 500 lines, written by any server sharing the database)."""
    endpoints_service.get_endpoint(ctx, endpoint)
    return runtime.log_lines(endpoint) if runtime is not None else endpoints_service.log_lines(ctx, endpoint)


__all__ = ["delete", "deploy", "describe", "logs", "regenerate_key", "route_traffic", "undeploy"]
