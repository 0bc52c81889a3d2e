"""The data pages: the list of data assets with an upload form, and one asset with its schema,
fingerprint and validation report. JSON twins: ``/api/v1/data`` and ``/api/v1/data/{ref}``.

The upload itself is ``PUT /api/v1/data/{name}/upload`` with the file as the body (``data.js``):
no multipart parser, and the API's error is shown next to the form.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from fmhub.api.pagination import MAX_OFFSET
from fmhub.services.context import Context
from fmhub.services.task_facts import tasks
from fmhub.ui.deps import get_ctx
from fmhub.ui.templating import render

router = APIRouter()
PAGE_SIZE = 50
ACCEPT = ".csv,.tsv,.tab,.jsonl,.ndjson,.json,.parquet,.pq,.conll,.conllu,.iob,.bio"
"""File extensions the readers know (``fmhub.data.readers``); the extension picks the reader."""
SPLIT_NOTES = ("no test data", "no validation data")
"""Report notes about a job's splits: an asset is checked as a lone training file, so they say nothing."""


@router.get("/data", response_class=HTMLResponse)
def data_assets(request: Request, offset: int = Query(0, ge=0, le=MAX_OFFSET), ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """Registered data assets (newest version first) and the upload form."""
    from fmhub.services.assets import list_assets

    assets = list_assets(ctx)
    context = {"items": assets[offset:offset + PAGE_SIZE], "total": len(assets), "offset": offset,
               "page_size": PAGE_SIZE, "tasks": tasks(), "accept": ACCEPT}
    json_url = "/api/v1/data" + (f"?offset={offset}" if offset else "")
    return render(request, "data_list.html", context, json_url=json_url, title="Data assets")


def column_roles(asset: Any) -> dict[str, list[str]]:
    """Column -> the task keys it was mapped to when the asset was validated (``{"review": ["sentence1"]}``)."""
    roles: dict[str, list[str]] = {}
    for key, column in (asset.column_mapping or {}).items():
        roles.setdefault(column, []).append(key)
    return roles


@router.get("/data/{ref}", response_class=HTMLResponse)
def data_asset(ref: str, request: Request, ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """One data asset; ``ref`` is ``NAME[:VERSION]`` (latest without a version).

    Raises:
        NotFoundError: no such asset (shown as an error page).
    """
    from fmhub.services.assets import get_data_asset, list_assets

    asset = get_data_asset(ctx, ref)
    versions = sorted((a.version for a in list_assets(ctx, asset.name)), reverse=True)
    report = asset.report
    notes = [n for n in (report or {}).get("notes") or [] if not n.startswith(SPLIT_NOTES)]
    extra = {k: v for k, v in (asset.read_options or {}).items() if k not in ("format", "encoding")}
    context = {"asset": asset, "report": report, "notes": notes, "read_extra": extra,
               "roles": column_roles(asset), "versions": versions}
    return render(request, "data_asset.html", context, json_url=f"/api/v1/data/{ref}", title=asset.ref)
