"""Queries on online endpoints and their deployments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from fmhub.entities import Deployment, Endpoint
from fmhub.errors import ConflictError, NotFoundError
from fmhub.store.db import get_engine, session_scope
from fmhub.store.tables import DeploymentRow, EndpointRow

SETTINGS = ("instances", "device", "runtime", "max_batch_size", "max_batch_wait_ms", "max_queue",
            "request_timeout_ms", "backend", "min_replicas", "max_replicas")


def _deployment(endpoint: str, row: DeploymentRow) -> Deployment:
    settings = {k: v for k, v in (row.settings or {}).items() if k in SETTINGS}
    return Deployment(endpoint=endpoint, name=row.name, model=row.model, task=row.task, traffic=row.traffic,
                      created_at=row.created_at, **settings)


def _endpoint(s: Any, row: EndpointRow) -> Endpoint:
    deployments = s.scalars(select(DeploymentRow).where(DeploymentRow.endpoint_id == row.id)
                            .order_by(DeploymentRow.id)).all()
    return Endpoint(name=row.name, description=row.description, created_at=row.created_at,
                    deployments=[_deployment(row.name, d) for d in deployments])


def _row(s: Any, name: str) -> EndpointRow:
    row = s.scalar(select(EndpointRow).where(EndpointRow.name == name))
    if row is None:
        raise NotFoundError(f"no endpoint named '{name}'", hint="list endpoints with `fmhub endpoints list`")
    return row


def create_endpoint(url: str, name: str, description: str, primary_key: str, secondary_key: str) -> Endpoint:
    """Insert an endpoint.

    Raises:
        ConflictError: the name is taken.
    """
    with session_scope(url) as s:
        if s.scalar(select(EndpointRow.id).where(EndpointRow.name == name)) is not None:
            raise ConflictError(f"an endpoint named '{name}' exists", hint="choose another name, or deploy to it")
        row = EndpointRow(name=name, description=description, primary_key=primary_key, secondary_key=secondary_key)
        s.add(row)
        s.flush()
        return _endpoint(s, row)


def get_endpoint(url: str, name: str) -> Endpoint:
    """An endpoint with its deployments (raises ``NotFoundError``)."""
    with session_scope(url) as s:
        return _endpoint(s, _row(s, name))


def list_endpoints(url: str) -> list[Endpoint]:
    """All endpoints by name."""
    with session_scope(url) as s:
        return [_endpoint(s, r) for r in s.scalars(select(EndpointRow).order_by(EndpointRow.name)).all()]


def delete_endpoint(url: str, name: str) -> None:
    """Delete an endpoint and its deployments (raises ``NotFoundError``)."""
    with session_scope(url) as s:
        row = _row(s, name)
        for d in s.scalars(select(DeploymentRow).where(DeploymentRow.endpoint_id == row.id)).all():
            s.delete(d)
        s.delete(row)


def get_keys(url: str, name: str) -> tuple[str, str]:
    """The endpoint's primary and secondary keys (raises ``NotFoundError``).

    Read on every scoring request (so that a regenerated key holds on every server at once): one
    Core query on a pooled connection, about a tenth of an ORM session's cost."""
    with get_engine(url).connect() as conn:
        row = conn.execute(select(EndpointRow.primary_key, EndpointRow.secondary_key)
                           .where(EndpointRow.name == name)).first()
    if row is None:
        raise NotFoundError(f"no endpoint named '{name}'", hint="list endpoints with `fmhub endpoints list`")
    return row[0], row[1]


def set_key(url: str, name: str, which: str, key: str) -> None:
    """Replace the ``primary`` or ``secondary`` key."""
    with session_scope(url) as s:
        row = _row(s, name)
        setattr(row, f"{which}_key", key)


def upsert_deployment(url: str, deployment: Deployment) -> Endpoint:
    """Create a deployment, or replace the model and settings of one with the same name."""
    settings = {k: getattr(deployment, k) for k in SETTINGS}
    with session_scope(url) as s:
        endpoint = _row(s, deployment.endpoint)
        row = s.scalar(select(DeploymentRow).where(DeploymentRow.endpoint_id == endpoint.id,
                                                   DeploymentRow.name == deployment.name))
        if row is None:
            row = DeploymentRow(endpoint_id=endpoint.id, name=deployment.name, model=deployment.model,
                                task=deployment.task, settings=settings, traffic=deployment.traffic)
            s.add(row)
        else:
            row.model, row.task, row.settings = deployment.model, deployment.task, settings
        s.flush()
        return _endpoint(s, endpoint)


def delete_deployment(url: str, endpoint: str, name: str) -> Endpoint:
    """Delete one deployment (raises ``NotFoundError``)."""
    with session_scope(url) as s:
        row = _row(s, endpoint)
        dep = s.scalar(select(DeploymentRow).where(DeploymentRow.endpoint_id == row.id, DeploymentRow.name == name))
        if dep is None:
            raise NotFoundError(f"endpoint '{endpoint}' has no deployment '{name}'")
        s.delete(dep)
        s.flush()
        return _endpoint(s, row)


def set_traffic(url: str, endpoint: str, traffic: dict[str, int]) -> Endpoint:
    """Set every deployment's traffic percentage (those not named get 0)."""
    with session_scope(url) as s:
        row = _row(s, endpoint)
        for dep in s.scalars(select(DeploymentRow).where(DeploymentRow.endpoint_id == row.id)).all():
            dep.traffic = int(traffic.get(dep.name, 0))
        s.flush()
        return _endpoint(s, row)
