"""Queries on API keys (only hashes are stored)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from fmhub.errors import NotFoundError
from fmhub.store.db import session_scope
from fmhub.store.tables import ApiKeyRow, utcnow


def _to_dict(row: ApiKeyRow) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "prefix": row.prefix, "created_at": row.created_at,
            "revoked_at": row.revoked_at}


def add_key(url: str, name: str, prefix: str, key_hash: str) -> dict[str, Any]:
    """Insert a key row (``key_hash``: hex SHA-256 of the whole key)."""
    with session_scope(url) as s:
        row = ApiKeyRow(name=name, prefix=prefix, key_hash=key_hash)
        s.add(row)
        s.flush()
        return _to_dict(row)


def find_active(url: str, key_hash: str) -> dict[str, Any] | None:
    """The unrevoked key with this hash, or None."""
    with session_scope(url) as s:
        row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash, ApiKeyRow.revoked_at.is_(None)))
        return _to_dict(row) if row else None


def list_keys(url: str) -> list[dict[str, Any]]:
    """All keys (without hashes), oldest first."""
    with session_scope(url) as s:
        return [_to_dict(r) for r in s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id)).all()]


def revoke(url: str, key_id: int) -> dict[str, Any]:
    """Revoke a key.

    Raises:
        NotFoundError: no key with this id.
    """
    with session_scope(url) as s:
        row = s.get(ApiKeyRow, key_id)
        if row is None:
            raise NotFoundError(f"no API key with id {key_id}", hint="list keys with `fmhub keys list`")
        row.revoked_at = row.revoked_at or utcnow()
        s.flush()
        return _to_dict(row)
