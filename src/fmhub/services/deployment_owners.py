"""Many servers, one database: each deployment runs on exactly one server, its owner.

A server takes the deployments nobody holds (a free or expired lease), renews its leases every
:data:`SYNC_S` seconds, stops the deployments it no longer holds (deleted, or redeployed through
another server), and records each one's state for the others to show. When a server dies its
leases run out after :data:`LEASE_TTL_S` seconds and the others take its deployments over. A clean
shutdown releases them at once.

The front door runs :func:`sync` periodically (an asyncio task of the server's event loop).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fmhub.services import endpoints as endpoints_service
from fmhub.services.context import Context
from fmhub.store import endpoint_logs_repo, owners_repo

log = logging.getLogger("fmhub.serving")

LEASE_TTL_S = 10.0
"""Seconds a deployment's lease lasts unless its owner renews it (a dead owner's deployments are
taken over after at most this plus :data:`SYNC_S`)."""

SYNC_S = 2.0
"""Seconds between a server's lease renewals and looks for deployments nobody runs."""


async def sync(ctx: Context, runtime: Any) -> None:
    """One round: write pending log lines, renew this server's leases, stop what it lost, take what
    nobody holds, and start it.

    Args:
        ctx: Service context.
        runtime: The server's :class:`fmhub.services.serving.EndpointRuntime`.
    """
    await asyncio.to_thread(endpoint_logs_repo.append, ctx.db_url, runtime.take_pending_logs())
    running = dict(runtime.live)  # what ran before the renewal; a deploy starting meanwhile is left alone
    states = {key: live.status()["state"] for key, live in running.items()}
    held = await asyncio.to_thread(owners_repo.renew, ctx.db_url, runtime.owner, LEASE_TTL_S, states)
    for key, live in running.items():
        if key not in held and runtime.live.get(key) is live:
            await runtime.stop(*key)
            runtime.note(key[0], f"deployment {key[1]} is no longer run by this server (deleted, or deployed "
                                 f"again through another server)")
    leases = await asyncio.to_thread(owners_repo.leases, ctx.db_url)
    for lease in leases:
        key = (lease.endpoint, lease.name)
        if lease.held() or key in runtime.live:
            continue
        taken = await asyncio.to_thread(owners_repo.acquire, ctx.db_url, lease.endpoint, lease.name,
                                        runtime.owner, runtime.owner_url, LEASE_TTL_S)
        if not taken:
            continue
        try:
            endpoint = await asyncio.to_thread(endpoints_service.get_endpoint, ctx, lease.endpoint)
            record = next(d for d in endpoint.deployments if d.name == lease.name)
            runtime.note(lease.endpoint, f"deployment {lease.name} taken by {runtime.owner}"
                                         + (f" from {lease.owner}" if lease.owner else ""))
            await runtime.start(record)
        except Exception as exc:  # one broken deployment must not stop the others
            runtime.note(lease.endpoint, f"deployment {lease.name} not started: {exc}")
    runtime.forget_routes()


async def take(ctx: Context, runtime: Any, endpoint: str, name: str) -> None:
    """Make this server the owner of a deployment it is deploying now (taken from any other owner).

    Args:
        ctx: Service context.
        runtime: The server's runtime.
        endpoint: Endpoint name.
        name: Deployment name.
    """
    await asyncio.to_thread(owners_repo.acquire, ctx.db_url, endpoint, name, runtime.owner,
                            runtime.owner_url, LEASE_TTL_S, True)
    runtime.forget_routes(endpoint)


async def release(ctx: Context, runtime: Any) -> None:
    """Write pending log lines and give up every lease of this server (a clean shutdown)."""
    await asyncio.to_thread(endpoint_logs_repo.append, ctx.db_url, runtime.take_pending_logs())
    await asyncio.to_thread(owners_repo.release, ctx.db_url, runtime.owner)


async def run_forever(ctx: Context, runtime: Any, period_s: float = SYNC_S) -> None:
    """Call :func:`sync` every ``period_s`` seconds until cancelled; a failed round is logged."""
    while True:
        try:
            await sync(ctx, runtime)
        except asyncio.CancelledError:
            raise
        except Exception:  # a database hiccup must not end the loop
            log.exception("deployment ownership round failed")
        await asyncio.sleep(period_s)
