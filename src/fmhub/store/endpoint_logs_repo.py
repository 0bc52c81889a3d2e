"""Endpoint logs in the database, so that every server shows the same lines."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from fmhub.store.db import session_scope
from fmhub.store.tables import EndpointLogRow

KEEP_LINES = 500
"""Lines kept per endpoint; older ones are removed when new ones are written."""


def append(url: str, lines: list[tuple[str, str]]) -> None:
    """Write ``(endpoint, line)`` pairs in order, keeping the last :data:`KEEP_LINES` per endpoint."""
    if not lines:
        return
    with session_scope(url) as s:
        s.execute(insert(EndpointLogRow), [{"endpoint": e, "line": line} for e, line in lines])
        for endpoint in {e for e, _ in lines}:
            cutoff = s.scalar(select(EndpointLogRow.id).where(EndpointLogRow.endpoint == endpoint)
                              .order_by(EndpointLogRow.id.desc()).offset(KEEP_LINES).limit(1))
            if cutoff is not None:
                s.execute(delete(EndpointLogRow).where(EndpointLogRow.endpoint == endpoint,
                                                       EndpointLogRow.id <= cutoff))


def tail(url: str, endpoint: str, limit: int = KEEP_LINES) -> list[str]:
    """The last ``limit`` lines of an endpoint's log, oldest first."""
    with session_scope(url) as s:
        rows = s.scalars(select(EndpointLogRow.line).where(EndpointLogRow.endpoint == endpoint)
                         .order_by(EndpointLogRow.id.desc()).limit(limit)).all()
    return list(reversed(rows))


def remove(url: str, endpoint: str) -> None:
    """Delete an endpoint's log (the endpoint was deleted)."""
    with session_scope(url) as s:
        s.execute(delete(EndpointLogRow).where(EndpointLogRow.endpoint == endpoint))


__all__ = ["KEEP_LINES", "append", "remove", "tail"]
