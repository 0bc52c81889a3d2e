"""API keys: created once (shown once), stored as SHA-256 hashes, checked on every API call."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from fmhub.errors import SpecError
from fmhub.services.context import Context
from fmhub.store import keys_repo

KEY_PREFIX = "fmk_"


def hash_key(key: str) -> str:
    """Hex SHA-256 of a key (keys are 256-bit random, so a plain hash is enough; no salt needed)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(ctx: Context, name: str) -> dict[str, Any]:
    """Create an API key.

    Returns:
        The key's row (id, name, prefix, created_at) plus ``key``: the secret, shown only now.

    Raises:
        SpecError: an empty name.
    """
    if not name.strip():
        raise SpecError("an API key needs a name", hint="e.g. `fmhub keys create --name laptop`")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = keys_repo.add_key(ctx.db_url, name.strip(), key[:12], hash_key(key))
    return {**row, "key": key}


def list_keys(ctx: Context) -> list[dict[str, Any]]:
    """Keys without their secrets."""
    return keys_repo.list_keys(ctx.db_url)


def revoke_key(ctx: Context, key_id: int) -> dict[str, Any]:
    """Revoke a key (raises ``NotFoundError``)."""
    return keys_repo.revoke(ctx.db_url, key_id)


class KeyChecker:
    """Checks bearer keys against the database, remembering good ones for ``ttl_s`` seconds.

    A revoked key stops working within ``ttl_s``.
    """

    def __init__(self, ctx: Context, ttl_s: float = 10.0) -> None:
        self.ctx = ctx
        self.ttl_s = ttl_s
        self._good: dict[str, float] = {}

    def check(self, key: str) -> bool:
        """True when ``key`` is an active key."""
        digest = hash_key(key)
        now = time.monotonic()
        seen = self._good.get(digest)
        if seen is not None and now - seen < self.ttl_s:
            return True
        if keys_repo.find_active(self.ctx.db_url, digest) is None:
            self._good.pop(digest, None)
            return False
        self._good[digest] = now
        return True
