"""``/api/v1/data``: register (by server path or upload), list and show data assets."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ConfigDict, Field

from fmhub.api.deps import get_ctx
from fmhub.api.pagination import Page, PageParams, make_page, page_params
from fmhub.entities import DataAsset
from fmhub.errors import SpecError
from fmhub.services.context import Context
from fmhub.services.specs import ReadOptions

router = APIRouter(prefix="/data", tags=["data assets"])

MAX_UPLOAD_MB = 512
FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class CreateDataAsset(ReadOptions):
    """Register a file on the server's disk as a data asset (validated first when ``task`` is given)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Asset name; identical content returns the existing version.")
    path: str = Field(description="The data file on the server, under its data roots (403 otherwise): JSONL, "
                                  "JSON, CSV, TSV, Parquet or CoNLL.")
    task: str | None = Field(None, description="Validate the rows for this task (report stored with the asset).")


def _create(ctx: Context, body: CreateDataAsset, source_name: str | None = None) -> dict[str, Any]:
    from fmhub.services.assets import create_data_asset

    options = ReadOptions.model_validate(body.model_dump(exclude={"name", "path", "task"}))
    asset, created = create_data_asset(ctx, body.path, body.name, task=body.task, options=options,
                                       source_name=source_name)
    return {**asset.model_dump(mode="json"), "created": created}


@router.post("", status_code=201, summary="Register a data file on the server")
def create_asset(body: CreateDataAsset, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Copies the file into the artifact store with its sha256, columns and row count. The file
    must lie under the server's data roots (403 ``forbidden_path`` otherwise: upload it with
    ``PUT /api/v1/data/{name}/upload``)."""
    return _create(ctx, body)


@router.put("/{name}/upload", status_code=201, summary="Upload a data file as a data asset")
async def upload_asset(name: str, request: Request,
                       filename: str = Query(..., description="File name; its extension picks the reader (.csv, .jsonl ...)."),
                       task: str | None = Query(None),
                       format: Literal["jsonl", "json", "csv", "tsv", "parquet", "conll"] | None = Query(
                           None, description="Force a reader (default: from the file name's extension)."),
                       encoding: str = Query("utf-8", description="Text encoding of CSV/TSV/JSON files."),
                       ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The request body is the file's bytes (at most 512 MiB, or `fmhub serve --max-upload-mb`),
    streamed to disk. Other reading options (column mapping, label options): pass them in a later
    job's spec, or register by path for the full set. The file is kept in the server's upload area
    (one of its data roots) while it is registered."""
    if not FILENAME_RE.match(filename):
        raise SpecError(f"'{filename}' is not a plain file name", hint="use letters, digits, '.', '_' and '-'")
    limits = getattr(request.app.state, "limits", None)
    limit = limits.max_upload_bytes if limits is not None else MAX_UPLOAD_MB * 1024 * 1024
    ctx.settings.uploads_dir.mkdir(parents=True, exist_ok=True)  # the upload area: one of the data roots
    with tempfile.TemporaryDirectory(dir=ctx.settings.uploads_dir) as tmp:
        path = Path(tmp) / filename
        size = 0
        with path.open("wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    from fastapi import HTTPException

                    raise HTTPException(413, f"upload over {limit // (1024 * 1024)} MiB")
                f.write(chunk)
        from starlette.concurrency import run_in_threadpool

        body = CreateDataAsset(name=name, path=str(path), task=task, format=format, encoding=encoding)
        result = await run_in_threadpool(_create, ctx, body, filename)  # errors name the upload
    return result


class PreviewRequest(ReadOptions):
    """Preview a data asset for a task: columns, first rows, column mapping and validation report."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="A data asset NAME:VERSION (or NAME:latest); upload files first.")
    task: str = Field(description="The task whose keys the columns map to.")
    rows: int = Field(5, ge=1, le=100, description="How many of the first rows to return.")


@router.post("/preview", summary="Preview a data asset for a task (mapping and validation report)")
def preview_asset(body: PreviewRequest, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """What the wizards' mapping step shows: the columns, the first rows, the column mapping (keys
    not given are matched by name) and the validation report of every row. Mapping problems are
    report errors (``report.ok`` false, ``key_problems`` per task key), not an error status."""
    from fmhub.services.assets import ASSET_REF
    from fmhub.services.data_preview import preview

    if not ASSET_REF.match(body.data.strip()):
        raise SpecError(f"'{body.data}' is not a data asset reference (NAME:VERSION)",
                        hint="upload the file with PUT /api/v1/data/{name}/upload first",
                        details=[{"field": "data", "message": "expected NAME:VERSION"}])
    options = ReadOptions.model_validate(body.model_dump(exclude={"data", "task", "rows"}))
    return preview(ctx, body.data.strip(), body.task, options, rows=body.rows)


@router.get("", response_model=Page[DataAsset], summary="List data assets")
def list_assets(name: str | None = Query(None, description="Only versions of this asset."),
                page: PageParams = Depends(page_params), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Newest version first; reports are left out (see the asset itself)."""
    from fmhub.services.assets import list_assets as all_assets

    assets = all_assets(ctx, name)
    items = [a.model_copy(update={"report": None}) for a in assets[page.offset:page.offset + page.limit]]
    return make_page(items, len(assets), page)


@router.get("/{ref}", response_model=DataAsset, summary="Show a data asset")
def show_asset(ref: str, ctx: Context = Depends(get_ctx)) -> DataAsset:
    """``NAME[:VERSION]`` (latest without a version): file, sha256, columns, rows, mapping, report."""
    from fmhub.services.assets import get_data_asset

    return get_data_asset(ctx, ref)
