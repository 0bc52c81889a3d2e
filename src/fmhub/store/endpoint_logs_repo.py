"""Endpoint logs in the database, so that every server shows the same lines.

Two kinds of line are kept apart: ``lifecycle`` (deploys, instance starts and failures, owner
changes) and ``request`` (error answers of the scoring URL). Each keeps its own last
:data:`KEEP_LINES` per endpoint, so a flood of bad requests never pushes out how the deployments
came to be.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from fmhub.store.db import session_scope
from fmhub.store.tables import EndpointLogRow

KEEP_LINES = 500
"""Lines kept per endpoint and kind; older ones are removed when new ones are written."""

KINDS = ("lifecycle", "request")


def append(url: str, lines: list[tuple[str, str, str]]) -> None:
    """Write ``(endpoint, kind, line)`` triples in order, keeping the last :data:`KEEP_LINES` per
    endpoint and kind."""
    if not lines:
        return
    with session_scope(url) as s:
        s.execute(insert(EndpointLogRow), [{"endpoint": e, "kind": k, "line": line} for e, k, line in lines])
        for endpoint, kind in {(e, k) for e, k, _ in lines}:
            cutoff = s.scalar(select(EndpointLogRow.id)
                              .where(EndpointLogRow.endpoint == endpoint, EndpointLogRow.kind == kind)
                              .order_by(EndpointLogRow.id.desc()).offset(KEEP_LINES).limit(1))
            if cutoff is not None:
                s.execute(delete(EndpointLogRow).where(EndpointLogRow.endpoint == endpoint,
                                                       EndpointLogRow.kind == kind, EndpointLogRow.id <= cutoff))


def tail(url: str, endpoint: str, limit: int = KEEP_LINES) -> list[str]:
    """The last ``limit`` lines of each kind of an endpoint's log, merged oldest first."""
    with session_scope(url) as s:
        rows = []
        for kind in KINDS:
            rows += s.execute(select(EndpointLogRow.id, EndpointLogRow.line)
                              .where(EndpointLogRow.endpoint == endpoint, EndpointLogRow.kind == kind)
                              .order_by(EndpointLogRow.id.desc()).limit(limit)).all()
    return [line for _, line in sorted(rows)]


def remove(url: str, endpoint: str) -> None:
    """Delete an endpoint's log (the endpoint was deleted)."""
    with session_scope(url) as s:
        s.execute(delete(EndpointLogRow).where(EndpointLogRow.endpoint == endpoint))


__all__ = ["KEEP_LINES", "KINDS", "append", "remove", "tail"]
