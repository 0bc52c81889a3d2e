"""Pagination of list routes: ``?limit=&offset=`` in, ``{items, total, limit, offset, next_offset}`` out."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")

MAX_LIMIT = 1000

MAX_OFFSET = 2**62
"""Largest ``offset`` (and event ``after``) a route takes: the database stores 64-bit integers, and a
larger one would fail there instead of answering 422."""


class PageParams(BaseModel):
    """``limit`` (1..1000, default 50) items from ``offset`` (default 0)."""

    limit: int = 50
    offset: int = 0


def page_params(limit: int = Query(50, ge=1, le=MAX_LIMIT, description="Items per page (1-1000)."),
                offset: int = Query(0, ge=0, le=MAX_OFFSET, description="Items to skip.")) -> PageParams:
    """FastAPI dependency reading ``limit`` and ``offset``."""
    return PageParams(limit=limit, offset=offset)


class Page(BaseModel, Generic[T]):
    """One page of a list.

    Attributes:
        items: The items of this page.
        total: Items matching the filters in all.
        limit: Page size asked for.
        offset: Items skipped.
        next_offset: Offset of the next page, or None on the last one.
    """

    items: list[T]
    total: int
    limit: int
    offset: int
    next_offset: int | None = None


def make_page(items: list[Any], total: int, params: PageParams) -> dict[str, Any]:
    """The page document for ``items`` (already sliced) of ``total``."""
    nxt = params.offset + len(items)
    return {"items": items, "total": total, "limit": params.limit, "offset": params.offset,
            "next_offset": nxt if nxt < total else None}
