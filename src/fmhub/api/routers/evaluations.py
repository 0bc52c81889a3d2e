"""``/api/v1/evaluations``: evaluate jobs compared side by side on the same metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from fmhub.api.deps import get_ctx
from fmhub.services.context import Context

router = APIRouter(prefix="/evaluations", tags=["evaluations"])


@router.get("", summary="Compare evaluate jobs")
def compare(jobs: str = Query(..., description="Evaluate job ids, comma-separated, in column order."),
            ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The jobs' test metrics side by side, as ``fmhub evaluate --model A --model B --json``
    (``{"task", "results": [{"job_id", "status", "model", "task", "test", ...}]}``), plus
    ``metrics`` (the union of the numeric metric names), ``best`` (metric -> job ids with the best
    value), ``texts``, ``per_class`` (F1 per class or entity type), ``per_group`` (the metrics per
    value of the group column, for data evaluated with ``group_by``) and ``done`` (every job
    finished). An unknown job id answers 404; a job that is not an evaluate job, 422."""
    from fmhub.services.evaluations import compare_evaluations

    return compare_evaluations(ctx, jobs)
