"""The catalog page: models with filters (task, fine-tuning task, license, registry, text search)
and counts per filter value. JSON twins: ``/api/v1/models`` and ``/api/v1/models/facets``."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from fmhub.api.pagination import MAX_OFFSET
from fmhub.services.context import Context
from fmhub.ui.deps import get_ctx
from fmhub.ui.templating import render

router = APIRouter()
PAGE_SIZE = 50
FACET_TITLES = {"task": "Task (serves or fine-tunes)", "finetune_task": "Fine-tuning task", "license": "License", "registry": "Registry"}


def _blank(value: str | None) -> str | None:
    return value.strip() or None if value else None


@router.get("/models", response_class=HTMLResponse)
def catalog(request: Request, task: str | None = Query(None), finetune_task: str | None = Query(None),
            license: str | None = Query(None), registry: str | None = Query(None),
            search: str | None = Query(None), offset: int = Query(0, ge=0, le=MAX_OFFSET),
            ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """The catalog; an htmx request (filters changed) gets only the results and filter panel."""
    from fmhub.services.catalog_facets import catalog_facets
    from fmhub.services.models import page_models

    filters = {"task": _blank(task), "finetune_task": _blank(finetune_task), "license": _blank(license),
               "registry": _blank(registry), "search": _blank(search)}
    items, total = page_models(ctx, limit=PAGE_SIZE, offset=offset, **filters)
    facets = catalog_facets(ctx, **filters)
    for facet, chosen in filters.items():  # a chosen value stays visible even with 0 matches
        if facet in facets and chosen and chosen not in facets[facet]:
            facets[facet][chosen] = 0
    query = urlencode({k: v for k, v in filters.items() if v})
    context = {"items": items, "total": total, "offset": offset, "page_size": PAGE_SIZE, "filters": filters,
               "facets": facets, "facet_titles": FACET_TITLES, "query": query}
    json_url = "/api/v1/models" + (f"?{query}" if query else "")
    template = "catalog_results.html" if request.headers.get("hx-request") else "catalog.html"
    return render(request, template, context, json_url=json_url, title="Model catalog")
