"""Who runs each deployment: a lease per deployment row, held by one server and renewed by it.

A server (its ``owner`` id, e.g. ``serve:host:pid``, and the URL other servers forward scoring
requests to) takes a deployment whose lease is free or expired with one conditional ``UPDATE``, so
two servers never both hold it; it renews its leases every few seconds; when it dies the lease
runs out and another server takes the deployment over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, or_, select, update

from fmhub.store.db import session_scope
from fmhub.store.tables import DeploymentRow, EndpointRow


@dataclass(frozen=True)
class Lease:
    """A deployment's owner as recorded.

    Attributes:
        endpoint: Endpoint name.
        name: Deployment name.
        owner: The holding server's id, or None.
        owner_url: Where that server answers scoring requests (``http://host:port``), or None.
        lease_until: When the lease runs out (UTC), or None.
        live_state: The state the owner last reported (``creating``, ``ready``, ``failed``).
    """

    endpoint: str
    name: str
    owner: str | None
    owner_url: str | None
    lease_until: datetime | None
    live_state: str | None

    def held(self, now: datetime | None = None) -> bool:
        """Whether a server holds the lease at ``now`` (default: the current time)."""
        if self.owner is None or self.lease_until is None:
            return False
        until = self.lease_until if self.lease_until.tzinfo else self.lease_until.replace(tzinfo=timezone.utc)
        return until > (now or datetime.now(timezone.utc))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _deployment_id(s, endpoint: str, name: str) -> int | None:
    return s.scalar(select(DeploymentRow.id).join(EndpointRow, EndpointRow.id == DeploymentRow.endpoint_id)
                    .where(EndpointRow.name == endpoint, DeploymentRow.name == name))


def leases(url: str, endpoint: str | None = None) -> list[Lease]:
    """Every deployment's lease (of one endpoint, or all)."""
    with session_scope(url) as s:
        query = (select(EndpointRow.name, DeploymentRow.name, DeploymentRow.owner, DeploymentRow.owner_url,
                        DeploymentRow.lease_until, DeploymentRow.live_state)
                 .join(EndpointRow, EndpointRow.id == DeploymentRow.endpoint_id).order_by(DeploymentRow.id))
        if endpoint is not None:
            query = query.where(EndpointRow.name == endpoint)
        return [Lease(*row) for row in s.execute(query).all()]


def acquire(url: str, endpoint: str, name: str, owner: str, owner_url: str, ttl_s: float,
            force: bool = False) -> bool:
    """Take a deployment's lease when it is free, expired or already ours (or always, with ``force``).

    Args:
        url: Database URL.
        endpoint: Endpoint name.
        name: Deployment name.
        owner: This server's id.
        owner_url: This server's URL for forwarded scoring requests.
        ttl_s: Seconds the lease lasts unless renewed.
        force: Take it from a live owner (a new deploy through this server); the old owner stops
            its copy when its next renewal finds the lease gone.

    Returns:
        Whether this server holds the lease now (False: another live server does, or no such
        deployment).
    """
    now = _now()
    with session_scope(url) as s:
        dep_id = _deployment_id(s, endpoint, name)
        if dep_id is None:
            return False
        condition = DeploymentRow.id == dep_id
        if not force:
            condition = and_(condition, or_(DeploymentRow.owner.is_(None), DeploymentRow.owner == owner,
                                            DeploymentRow.lease_until.is_(None), DeploymentRow.lease_until < now))
        result = s.execute(update(DeploymentRow).where(condition).values(
            owner=owner, owner_url=owner_url, lease_until=now + timedelta(seconds=ttl_s),
            live_state="creating" if force else DeploymentRow.live_state))
        return result.rowcount == 1


def renew(url: str, owner: str, ttl_s: float, states: dict[tuple[str, str], str]) -> set[tuple[str, str]]:
    """Extend every lease ``owner`` holds and record each deployment's state.

    Args:
        url: Database URL.
        owner: This server's id.
        ttl_s: Seconds the leases last from now.
        states: ``(endpoint, deployment) -> state`` of the deployments this server runs.

    Returns:
        The ``(endpoint, deployment)`` pairs this server still holds (one missing from it was
        deleted or taken over: stop it).
    """
    now = _now()
    held: set[tuple[str, str]] = set()
    with session_scope(url) as s:
        rows = s.execute(select(DeploymentRow.id, EndpointRow.name, DeploymentRow.name)
                         .join(EndpointRow, EndpointRow.id == DeploymentRow.endpoint_id)
                         .where(DeploymentRow.owner == owner)).all()
        for dep_id, endpoint, name in rows:
            values = {"lease_until": now + timedelta(seconds=ttl_s)}
            if (endpoint, name) in states:
                values["live_state"] = states[(endpoint, name)]
            s.execute(update(DeploymentRow).where(DeploymentRow.id == dep_id, DeploymentRow.owner == owner)
                      .values(**values))
            held.add((endpoint, name))
    return held


def release(url: str, owner: str) -> int:
    """Give up every lease ``owner`` holds (a clean shutdown), so another server takes over at once.

    Returns:
        The number of leases released.
    """
    with session_scope(url) as s:
        result = s.execute(update(DeploymentRow).where(DeploymentRow.owner == owner)
                           .values(owner=None, owner_url=None, lease_until=None, live_state=None))
        return result.rowcount or 0
