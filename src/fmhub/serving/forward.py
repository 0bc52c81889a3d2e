"""Forwarding a scoring request to the server that runs the deployment.

Several ``fmhub serve`` processes may share one database; each deployment runs on exactly one of
them (its owner). Any server answers an endpoint's scoring URL: when traffic routes a request to a
deployment another server owns, the request is passed on, once, to that server's URL with the same
body and key, naming the deployment. A forwarded request is never forwarded again.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

FORWARDED_HEADER = "x-fmhub-forwarded"
"""Set on a forwarded request: the receiving server answers it from its own deployments only."""


class ForwardFailed(Exception):
    """The owner could not be reached, or did not answer in time.

    Args:
        owner_url: The owner's URL.
        cause: What went wrong.
    """

    def __init__(self, owner_url: str, cause: str) -> None:
        super().__init__(f"{owner_url}: {cause}")
        self.owner_url = owner_url
        self.cause = cause


class Forwarder:
    """An HTTP client for forwarded scoring requests (one connection pool per server).

    Args:
        connect_timeout_s: Seconds to open a connection to the owner.
    """

    def __init__(self, connect_timeout_s: float = 2.0) -> None:
        self.connect_timeout_s = connect_timeout_s
        self._client: httpx.AsyncClient | None = None

    async def score(self, owner_url: str, endpoint: str, deployment: str, body: bytes,
                    authorization: str | None, timeout_s: float) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Send a scoring request to ``owner_url`` for ``deployment`` and return its answer.

        Args:
            owner_url: ``http://host:port`` of the owner.
            endpoint: Endpoint name.
            deployment: The deployment the request was routed to.
            body: The request body, unchanged.
            authorization: The caller's ``Authorization`` header (the owner checks the key again).
            timeout_s: Seconds to wait for the whole answer.

        Returns:
            ``(status, json_body, headers)`` of the owner's answer (``Retry-After`` kept).

        Raises:
            ForwardFailed: no connection, a timeout, or an answer that is not JSON.
        """
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False)
        headers = {"content-type": "application/json", "x-fmhub-deployment": deployment, FORWARDED_HEADER: "1"}
        if authorization:
            headers["authorization"] = authorization
        url = f"{owner_url.rstrip('/')}/endpoints/{endpoint}/score"
        try:
            response = await self._client.post(url, content=body, headers=headers,
                                                timeout=httpx.Timeout(timeout_s, connect=self.connect_timeout_s))
        except httpx.HTTPError as exc:
            raise ForwardFailed(owner_url, f"{type(exc).__name__}: {exc}") from None
        try:
            payload = response.json()
        except (ValueError, json.JSONDecodeError):
            raise ForwardFailed(owner_url, f"answered {response.status_code} without a JSON body") from None
        kept = {k: v for k, v in response.headers.items() if k.lower() in ("retry-after", "www-authenticate")}
        return response.status_code, payload, kept

    async def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
