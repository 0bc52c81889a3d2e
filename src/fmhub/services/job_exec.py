"""Running one job by id: the code a job process runs (``fmhub jobs execute ID``).

A queued job is started by a scheduler as its own process; that process calls
:func:`execute_job`, which runs the same functions a foreground ``fmhub finetune`` or
``fmhub evaluate`` runs.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any

from fmhub.entities import Job, JobStatus
from fmhub.errors import ConflictError, SpecError
from fmhub.services import jobs as jobs_service
from fmhub.services.context import Context
from fmhub.services.data_roots import check_folder
from fmhub.store import jobs_repo

log = logging.getLogger("fmhub.job")


class ImportSpec:
    """Keys of an ``import`` job: path, name, task, license, allow_pickle, description."""

    KEYS = ("path", "name", "task", "license", "allow_pickle", "description")


def submit_import(ctx: Context, path: str, name: str, task: str, license: str | None = None,
                  allow_pickle: bool = False, description: str = "") -> Job:
    """Check an import (folder, task, name) and queue it as an ``import`` job.

    With a bucket artifact store the folder is uploaded at submit (``imports/<uuid>`` in the store)
    and the job names that URL, so any worker can run it; with the local store it names the folder.

    Raises:
        ImportRefusedError: missing files, remote code, or pickle weights not allowed.
        SpecError: unknown task or invalid name.
        ForbiddenPathError: on a server, ``path`` is outside its data roots.
    """
    from fmhub.catalog.importer import inspect_model_folder
    from fmhub.services.models import NAME_RE
    from fmhub.tasks import task_names

    if task not in task_names():
        raise SpecError(f"unknown task '{task}'", hint=f"choose one of: {', '.join(task_names())}")
    if not NAME_RE.match(name):
        raise SpecError(f"'{name}' is not a valid model name",
                        hint="use letters, digits, '.', '_' and '-' (up to 200 characters)")
    check_folder(ctx, "path", path)
    inspect_model_folder(Path(path), allow_pickle=allow_pickle)
    source = str(Path(path).resolve())
    if not ctx.artifacts.is_local:  # a worker on another machine reads the folder from the store
        source = ctx.artifacts.put_dir(Path(source), ctx.artifacts.url_for("imports", uuid.uuid4().hex))
    spec = {"path": source, "name": name, "task": task, "license": license,
            "allow_pickle": allow_pickle, "description": description}
    return jobs_service.new_job(ctx, "import", spec)


def _execute_import(ctx: Context, job: Job) -> dict[str, Any]:
    from fmhub.services.models import import_model

    events = jobs_service.JobEventSink(ctx, job)
    args = {k: job.spec.get(k) for k in ImportSpec.KEYS if k in job.spec}
    staged = args.get("path") if not ctx.artifacts.is_local and "://" in str(args.get("path")) else None
    try:
        with jobs_service.job_log(job, ctx):
            if staged is not None:  # uploaded at submit: this machine's copy of the folder
                args["path"] = ctx.artifacts.local_path(staged)
            version = import_model(ctx, **args)
    except Exception as exc:
        jobs_service.record_outcome(ctx, job, exc=exc)
        raise
    outputs = {"registered_model": version.ref}
    jobs_service.record_outcome(ctx, job, outputs=outputs)
    if staged is not None:
        ctx.artifacts.delete(staged)  # the registered version holds its own copy
    events.event("done", {"status": "completed", "registered_model": version.ref})
    return outputs


def execute_job(ctx: Context, job_id: str) -> dict[str, Any]:
    """Run job ``job_id`` (marked ``running`` by its scheduler) in this process.

    Returns:
        The job's result document.

    Raises:
        ConflictError: the job is not marked running.
        FmhubError: whatever the job raised (the job row is marked failed or canceled first).
    """
    job = jobs_service.get_job(ctx, job_id)
    if job.status != JobStatus.running:
        raise ConflictError(f"job {job_id} is {job.status.value}, not running",
                            hint="jobs are started by `fmhub serve` or `fmhub worker`")
    jobs_repo.set_pid(ctx.db_url, job.id, os.getpid())
    job = jobs_service.working_folder(ctx, job)  # a bucket store: this machine's copy of the job's folder
    if job.kind == "finetune":
        from fmhub.services.finetune import execute_finetune

        return execute_finetune(ctx, job).to_dict()
    if job.kind == "evaluate":
        from fmhub.services.evaluate import execute_evaluate

        return execute_evaluate(ctx, job)
    if job.kind == "import":
        return _execute_import(ctx, job)
    raise SpecError(f"unknown job kind '{job.kind}'")


def record_placement(ctx: Context, job_id: str, placement: dict[str, Any]) -> bool:
    """In a job process started by a Ray task: record the node it runs on (a ``placed`` stage event
    with ``node_id``, ``node_ip``, ``host``), and when the same launch was placed before (Ray
    retried the task after its worker or node was lost), set the job to resume from its last
    checkpoint, with a ``requeued`` event saying why.

    Args:
        placement: ``{launch, node_id, node_ip, host, ray_worker_pid}`` from the Ray task.

    Returns:
        Whether this start is a retry.
    """
    launch = placement.get("launch")
    placed = [e for e in jobs_repo.list_events(ctx.db_url, job_id)
              if e.kind == "stage" and e.data.get("stage") == "placed" and e.data.get("launch") == launch]
    if placed:
        last = placed[-1].data
        reason = (f"its Ray worker on node {last.get('node_ip')} ({str(last.get('node_id'))[:12]}) was lost; "
                  f"Ray retried its task, which resumes from the last checkpoint")
        jobs_repo.set_resume(ctx.db_url, job_id)
        jobs_repo.append_event(ctx.db_url, job_id, "stage", {"stage": "requeued", "reason": reason,
                                                             "attempt": len(placed) + 1})
        log.warning("job %s: %s", job_id, reason)
    jobs_repo.append_event(ctx.db_url, job_id, "stage", {"stage": "placed", "compute": "ray",
                                                         "attempt": len(placed) + 1, **placement})
    return bool(placed)


def run_job_process(ctx: Context, job_id: str) -> dict[str, Any]:
    """The body of a job process: SIGTERM becomes a cancel (checkpoints kept), the process ends
    if its scheduler (or Ray task) is gone, a job on a Ray node records where it runs (see
    :func:`record_placement`), then :func:`execute_job`."""
    import json
    import signal

    from fmhub.runners.local import watch_parent
    from fmhub.runners.ray_task import PLACEMENT_ENV

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    watch_parent()
    if os.environ.get(PLACEMENT_ENV):
        record_placement(ctx, job_id, json.loads(os.environ[PLACEMENT_ENV]))
    return execute_job(ctx, job_id)
