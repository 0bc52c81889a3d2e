"""Registering a fine-tune job's model: at the end of the job, or later from its folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from fmhub.entities import JobStatus, ModelVersion
from fmhub.errors import ConflictError
from fmhub.services import jobs as jobs_service
from fmhub.services.context import Context
from fmhub.services.models import register_folder
from fmhub.store import models_repo

LINEAGE_FILE = "lineage.json"


def save_model(model: Any, tokenizer: Any, out_dir: Path, lineage: dict[str, Any]) -> None:
    """Write the trained model and tokenizer (safetensors) and its lineage next to it."""
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    write_lineage(out_dir, lineage)


def write_lineage(out_dir: Path, lineage: dict[str, Any]) -> None:
    """Write a saved model's lineage next to its folder (``lineage.json``, read by a later registration)."""
    (out_dir.parent / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2, default=str), encoding="utf-8")


def registered_by_job(ctx: Context, name: str, job_id: str) -> ModelVersion | None:
    """The version of ``name`` a job registered already (a job resumed after registering), if any."""
    for version in models_repo.list_versions(ctx.db_url, name=name):
        if (version.lineage or {}).get("job_id") == job_id:
            return version
    return None


def register_job_folder(ctx: Context, out_dir: Path, name: str, lineage: dict[str, Any]) -> ModelVersion:
    """Register a job's saved model folder (moved into the artifact store) as the next version of ``name``."""
    version = register_folder(ctx, out_dir, name, lineage["task"], license=lineage.get("license"),
                              description=lineage.get("description", ""), base_model=lineage.get("base_model"),
                              lineage=lineage, metrics=lineage.get("metrics") or {}, move=True)
    if not ctx.artifacts.is_local:  # copied to the bucket: the job's folder need not keep it too
        shutil.rmtree(out_dir, ignore_errors=True)
    return version


def register_job_model(ctx: Context, job_id: str, name: str | None = None) -> ModelVersion:
    """Register the model of a completed fine-tune job that was run with ``register_model: false``.

    Args:
        ctx: Service context.
        job_id: The fine-tune job.
        name: Workspace name (default: the job spec's ``registered_model_name`` or ``<model>-<task>``).

    Raises:
        NotFoundError: no such job.
        ConflictError: not a completed fine-tune job, already registered, or its model folder is gone.
    """
    from fmhub.services.specs import FinetuneSpec

    job = jobs_service.get_job(ctx, job_id)
    if job.kind != "finetune" or job.status != JobStatus.completed:
        raise ConflictError(f"job {job_id} is not a completed fine-tune job ({job.kind}, {job.status.value})",
                            hint="only the model of a completed fine-tune job can be registered")
    if job.outputs.get("registered_model"):
        raise ConflictError(f"job {job_id} registered its model already as {job.outputs['registered_model']}")
    folder = Path(jobs_service.working_folder(ctx, job).folder or ".")
    out_dir = folder / "model"
    if not ((out_dir / "config.json").is_file() or (out_dir / "adapter_config.json").is_file()):
        raise ConflictError(f"job {job_id} has no saved model in {out_dir}",
                            hint="run the fine-tune again with register_model: true")
    lineage = json.loads((folder / LINEAGE_FILE).read_text(encoding="utf-8"))
    target = name or FinetuneSpec.model_validate(job.spec).output_name()
    version = register_job_folder(ctx, out_dir, target, lineage)
    jobs_service.update_outputs(ctx, job_id, {"registered_model": version.ref, "model_folder": None})
    return version
