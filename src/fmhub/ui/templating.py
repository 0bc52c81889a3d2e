"""The Jinja2 environment shared by every page: templates, filters and the page renderer."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup

from fmhub import __version__

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
STATIC_URL = "/static/ui"

_markdown = MarkdownIt("js-default")  # CommonMark with raw HTML escaped: safe for untrusted cards
templates = Jinja2Templates(directory=str(TEMPLATE_DIR))


def markdown(text: str | None) -> Markup:
    """Render card markdown to HTML; raw HTML in the text is escaped, links stay plain ``<a>``."""
    return Markup(_markdown.render(text or ""))


def human_count(n: int | float | None) -> str:
    """``22713216`` -> ``22.7M`` (parameters, rows)."""
    if n is None:
        return "-"
    n = float(n)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:g}"


def human_bytes(n: int | None) -> str:
    """``1536`` -> ``1.5 KiB``."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def metric(value: Any) -> str:
    """Metrics with 4 significant decimals; counts and text as they are."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def when(value: Any) -> str:
    """A timestamp as ``2026-12-01 05:04:01`` (UTC as stored)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value or "-")[:19].replace("T", " ")


def to_json(value: Any, indent: int | None = 2) -> str:
    """Pretty JSON for ``<pre>`` blocks (autoescaped by the template)."""
    return json.dumps(value, indent=indent, default=str, ensure_ascii=False)


templates.env.filters.update(markdown=markdown, human_count=human_count, human_bytes=human_bytes,
                             metric=metric, when=when, to_json=to_json)
templates.env.globals.update(static=STATIC_URL, version=__version__)


def render(request: Request, template: str, context: dict[str, Any] | None = None, *,
           json_url: str | None = None, status_code: int = 200, title: str | None = None) -> HTMLResponse:
    """Render a page or fragment.

    Args:
        request: The request (templates build links from it).
        template: Template file under ``ui/templates``.
        context: Template variables.
        json_url: The page's JSON twin in the REST API (shown as the header's ``JSON`` link).
        status_code: HTTP status.
        title: The page title (``<title>`` and ``<h1>``).
    """
    ctx = {"json_url": json_url, "title": title, **(context or {})}
    return templates.TemplateResponse(request, template, ctx, status_code=status_code)
