"""Form bodies of the UI (``application/x-www-form-urlencoded``, what browsers and htmx send), read
without a multipart parser, and turned into the nested dicts of the job specs."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import Request

MAX_FORM_BYTES = 1 << 20
"""Largest form body read (1 MiB); uploads go to ``PUT /api/v1/data/{name}/upload`` instead."""


async def read_form(request: Request) -> dict[str, list[str]]:
    """The submitted fields, each with all its values (checkbox groups repeat a name).

    Raises:
        SpecError: when the body is larger than :data:`MAX_FORM_BYTES`.
    """
    from fmhub.errors import SpecError

    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise SpecError("the form is larger than 1 MiB", hint="upload data files on the Data page")
    form = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    form.pop("csrf_token", None)  # checked by the server's same-origin guard (fmhub.api.security)
    return form


def first(form: dict[str, list[str]], name: str, default: str = "") -> str:
    """The first value of ``name`` (stripped), or ``default``."""
    values = form.get(name) or [default]
    return values[0].strip()


def nested(form: dict[str, list[str]], prefix: str = "", skip_empty: bool = True) -> dict[str, Any]:
    """Fields named with dotted spec paths (``hyperparameters.learning_rate``) as a nested dict.

    Args:
        form: The fields from :func:`read_form`.
        prefix: Only fields starting with ``prefix.`` (and the prefix removed); ``""`` for all.
        skip_empty: Leave out empty values, so the spec's defaults apply.

    Returns:
        ``{"hyperparameters": {"learning_rate": "5e-5"}}``: values stay strings (pydantic converts
        and checks them when the spec is built).
    """
    out: dict[str, Any] = {}
    for name, values in form.items():
        if prefix:
            if not name.startswith(prefix + "."):
                continue
            name = name[len(prefix) + 1:]
        value = values[0].strip() if values else ""
        if skip_empty and value == "":
            continue
        node = out
        parts = name.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return out
