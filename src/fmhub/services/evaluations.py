"""Evaluating several models on the same test data and comparing them: the models that can be
evaluated, checking and queueing one evaluate job per model (all or none), and the side-by-side
comparison of their metrics (``GET /api/v1/evaluations?jobs=ID,ID``, the UI's results page; the
comparison itself is :mod:`fmhub.evaluation.compare`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fmhub.entities import Job, JobStatus
from fmhub.errors import ConflictError, DataError, FmhubError, SpecError
from fmhub.evaluation.compare import MAX_COMPARED, compare_results, is_number, parse_job_ids, zero_shot_comparison
from fmhub.services import jobs as jobs_service
from fmhub.services.context import Context
from fmhub.services.models import head_problem
from fmhub.services.specs import EvaluateSpec

TERMINAL = (JobStatus.completed, JobStatus.failed, JobStatus.canceled)



# -- which models ----------------------------------------------------------------------------------

def evaluation_choices(ctx: Context, extra: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The models the evaluate wizard lists: every workspace model version (newest first per name),
    and the catalog models named in ``extra`` whose files are here and that serve a task.

    Returns:
        One entry per (model, task): ``ref``, ``task``, ``registry``, ``base_model``, ``created_at``,
        ``metrics`` (the version's test metrics, if any) and ``problem`` (why it cannot be
        evaluated; None when it can).
    """
    from fmhub.services.code_samples import served_tasks
    from fmhub.services.models import list_models
    from fmhub.store import models_repo
    from fmhub.tasks import task_names

    known = set(task_names())
    out: list[dict[str, Any]] = []
    for v in models_repo.list_versions(ctx.db_url):
        problem = (head_problem(ctx.artifacts.local_files(v.path), v.task) if v.task in known  # config.json only
                   else f"fmhub cannot evaluate {v.task} models")
        out.append({"ref": v.ref, "task": v.task, "registry": "workspace", "base_model": v.base_model,
                    "created_at": v.created_at, "metrics": (v.metrics or {}).get("test") or {}, "problem": problem})
    names = {str(ref).partition(":")[0] for ref in extra if ref and ":" not in str(ref)}
    if names:
        for card in list_models(ctx, registry="system"):
            if card.name not in names:
                continue
            for task in served_tasks(card.model_dump()):
                out.append({"ref": card.name, "task": task, "registry": "system", "base_model": None,
                            "created_at": None, "metrics": {},
                            "problem": None if card.available_offline else "its files are not on this machine"})
    return out


# -- check and queue -------------------------------------------------------------------------------

def _model_task(ctx: Context, ref: str) -> str | None:
    """The task of a workspace version, None for a catalog model (its task comes from the spec)."""
    from fmhub.services.models import resolve_model

    resolved = resolve_model(ctx, ref)
    return resolved.version.task if resolved.version else None


def check_evaluations(ctx: Context, specs: Sequence[EvaluateSpec]) -> list[Any]:
    """Check every evaluation (model, task head, test rows) without queueing anything.

    All models must share one task: that of the first spec (its ``task``, else its model's).

    Returns:
        The :class:`~fmhub.services.evaluate.EvaluatePlan` of each spec, in order.

    Raises:
        SpecError: a model cannot be evaluated (not found, another task, no trained head); its
            ``details`` hold one ``{"field": "model", "model", "message"}`` per model concerned, and
            one ``{"field": "data.test", ...}`` per model whose test data has errors; or a test data
            reference ``NAME:VERSION`` of no data asset (``{"field": "data.test"}``).
        DataError: only the test data has errors (the first model's report, with data asset
            references named as given, in ``details``).
    """
    from fmhub.services.assets import rename_path
    from fmhub.services.evaluate import check_evaluate

    if not specs:
        raise SpecError("choose at least one model to evaluate",
                        details=[{"field": "model", "message": "choose at least one model"}])
    for test in dict.fromkeys(spec.data.test for spec in specs):
        try:
            _test_path(ctx, test)
        except FmhubError as exc:
            raise SpecError(exc.message, hint=exc.hint,
                            details=[{"field": "data.test", "message": exc.message}]) from None
    problems: list[dict[str, str]] = []
    data_errors: list[tuple[str, DataError]] = []
    plans: list[Any] = []
    task = specs[0].task
    for spec in specs:
        try:
            own = _model_task(ctx, spec.model)
            task = task or own
            if own is not None and task is not None and own != task:
                raise SpecError(f"it is a {own} model, the others are {task}",
                                hint="evaluate models of one task together")
            plan = check_evaluate(ctx, spec)
        except DataError as exc:
            data_errors.append((spec.model, rename_path(exc, _test_path(ctx, spec.data.test), spec.data.test)))
            continue
        except FmhubError as exc:
            message = exc.message + (f" ({exc.hint})" if exc.hint else "")
            problems.append({"field": "model", "model": spec.model, "message": f"{spec.model}: {message}"})
            continue
        plans.append(plan)
    if problems:
        problems += [{"field": "data.test", "model": ref, "message": f"{ref}: {exc.message.splitlines()[0]}"}
                     for ref, exc in data_errors]
        models = ", ".join(dict.fromkeys(p["model"] for p in problems))
        raise SpecError(f"{len(problems)} problem(s) with the models to evaluate ({models}): "
                        + "; ".join(p["message"] for p in problems),
                        hint="untick the models marked, or fine-tune them first", details=problems)
    if data_errors:
        refs = [ref for ref, _ in data_errors]
        first = data_errors[0][1]
        which = "every model" if len(refs) == len(specs) else ", ".join(refs)
        raise DataError(f"the test data does not fit {which}: {first.message}", hint=first.hint,
                        details=first.details)
    return plans


def _test_path(ctx: Context, test: str) -> str:
    """The file a test data reference stands for (the reference itself when it is a path).

    Raises:
        NotFoundError: ``NAME:VERSION`` of no registered data asset.
    """
    from fmhub.services.assets import asset_file, resolve_data_ref

    asset = resolve_data_ref(ctx, test)
    return str(asset_file(ctx, asset)) if asset is not None else test


def submit_evaluations(ctx: Context, specs: Sequence[EvaluateSpec]) -> list[Job]:
    """Queue one evaluate job per spec, or none: every spec is checked first
    (:func:`check_evaluations`); a job refused after that cancels those already queued.

    Raises:
        SpecError, DataError: as :func:`check_evaluations`; nothing is queued.
    """
    from fmhub.services.evaluate import submit_evaluate

    check_evaluations(ctx, specs)
    queued: list[Job] = []
    try:
        for spec in specs:
            job, _ = submit_evaluate(ctx, spec)
            queued.append(job)
    except FmhubError:
        for job in queued:
            try:
                jobs_service.cancel_job(ctx, job.id)
            except ConflictError:
                pass  # it already ran
        raise
    return queued


# -- compare ---------------------------------------------------------------------------------------

def _progress(ctx: Context, job: Job) -> dict[str, int] | None:
    """Rows predicted so far by a running evaluate job (its latest ``predict`` event)."""
    if job.status != JobStatus.running:
        return None
    for event in reversed(jobs_service.job_events(ctx, job.id)):
        if event.kind == "predict" and is_number(event.data.get("total")):
            return {"done": int(event.data.get("done") or 0), "total": int(event.data["total"])}
    return None


def _result(ctx: Context, job: Job) -> dict[str, Any]:
    metrics = (job.outputs.get("metrics") or {}).get("test") if job.status == JobStatus.completed else None
    return {"job_id": job.id, "status": job.status.value, "model": job.outputs.get("model") or job.spec.get("model"),
            "task": job.spec.get("task"), "test": metrics or None, "error": job.error,
            "created_at": job.created_at, "finished_at": job.finished_at, "progress": _progress(ctx, job)}


def compare_evaluations(ctx: Context, job_ids: str | Sequence[str]) -> dict[str, Any]:
    """Evaluate jobs side by side on the same metrics.

    Args:
        job_ids: Evaluate job ids (a list, or comma-separated text), in column order.

    Returns:
        ``{"task", "results", "metrics", "best", "texts", "per_class", "per_group", "done"}``: ``results`` has one
        entry per job, as ``fmhub evaluate --model A --model B --json`` (``job_id``, ``status``,
        ``model``, ``task``, ``test`` metrics (None until the job completes), ``error``,
        ``progress`` ``{"done", "total"}`` rows while running); ``metrics`` the union of the
        numeric metric names in order of first appearance (``n``, the row count, left out);
        ``best`` metric name -> the job ids with the best value (higher is better, lower for a
        loss; empty where fewer than two jobs have a value or all are equal); ``texts`` the text metrics (sacreBLEU
        signatures); ``per_class`` the per-class (or per-entity-type) F1 as ``{"key", "labels",
        "f1": {label: {job_id: f1}}, "best": {label: [job_id]}}`` or None; ``per_group`` the
        metrics per value of the group column (data evaluated with ``--group-by``) as
        :func:`fmhub.evaluation.compare.per_group_metrics`, or None; ``done`` whether every job has
        finished.

    Raises:
        SpecError: no ids, too many, or a job that is not an evaluate job.
        NotFoundError: an unknown job id.
    """
    ids = parse_job_ids(job_ids)
    if not ids:
        raise SpecError("no jobs to compare", hint="give evaluate job ids: ?jobs=ID,ID")
    if len(ids) > MAX_COMPARED:
        raise SpecError(f"{len(ids)} jobs given; at most {MAX_COMPARED} can be compared at once")
    jobs = [jobs_service.get_job(ctx, job_id) for job_id in ids]
    others = [f"{j.id} ({j.kind})" for j in jobs if j.kind != "evaluate"]
    if others:
        raise SpecError(f"only evaluate jobs can be compared: {', '.join(others)}",
                        hint="the test metrics of a fine-tune job are on its own page")
    results = [_result(ctx, job) for job in jobs]
    compared = compare_results(results)
    return {"task": compared["task"], "results": results, "metrics": compared["metrics"], "best": compared["best"],
            "texts": compared["texts"], "per_class": compared["per_class"], "per_group": compared["per_group"],
            "done": all(j.status in TERMINAL for j in jobs)}


def base_vs_finetuned(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """A fine-tune's test metrics beside its base model's zero-shot metrics on the same test data,
    overall and per group (see :func:`fmhub.evaluation.compare.zero_shot_comparison`).

    Args:
        metrics: The metrics per split of a fine-tune job or of the version it registered.

    Returns:
        The comparison, or None when no zero-shot metrics were recorded.
    """
    return zero_shot_comparison(metrics)
