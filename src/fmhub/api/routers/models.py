"""``/api/v1/models``: list and filter the catalog, show a card, import, register, predict."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from fmhub.api.deps import get_ctx
from fmhub.api.pagination import Page, PageParams, make_page, page_params
from fmhub.entities import Job, ModelCard, ModelVersion
from fmhub.services.context import Context

router = APIRouter(prefix="/models", tags=["models"])


class ImportRequest(BaseModel):
    """Import a Hugging Face folder on the server's disk as a workspace model (an ``import`` job)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Folder with config.json, safetensors weights and the tokenizer.")
    name: str = Field(description="Workspace model name.")
    task: str = Field(description="The task the model serves.")
    license: str | None = None
    allow_pickle: bool = Field(False, description="Accept pickle (.bin) weights; they can run code when loaded.")
    description: str = ""


class RegisterRequest(BaseModel):
    """Register the model of a completed fine-tune job run with ``register_model: false``."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    name: str | None = Field(None, description="Workspace name (default: the job's registered_model_name).")


class PredictRequest(BaseModel):
    """Inputs in the task's request form."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[Any] = Field(description="Strings (or [text, text_pair] pairs for text classification; "
                                          "{question, context} objects for question answering).",
                              max_length=1024)
    task: str | None = None
    top_k: int = Field(1, ge=1, le=100)


TaskQ = Query(None, description="Keep models that serve or fine-tune this task.")
FinetuneTaskQ = Query(None, description="Keep models fmhub can fine-tune for this task.")
LicenseQ = Query(None, description="License id, e.g. apache-2.0.")
SearchQ = Query(None, description="Text in name, description or architecture.")


@router.get("", response_model=Page[ModelCard], summary="List and filter models")
def list_models(task: str | None = TaskQ, finetune_task: str | None = FinetuneTaskQ,
                license: str | None = LicenseQ, search: str | None = SearchQ,
                registry: Literal["system", "workspace"] | None = Query(None),
                page: PageParams = Depends(page_params), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """System cards first, then the latest version of each workspace model."""
    from fmhub.services.models import page_models

    items, total = page_models(ctx, task=task, license=license, search=search, registry=registry,
                               limit=page.limit, offset=page.offset, finetune_task=finetune_task)
    return make_page(items, total, page)


@router.get("/facets", summary="Counts per filter value")
def model_facets(task: str | None = TaskQ, finetune_task: str | None = FinetuneTaskQ,
                 license: str | None = LicenseQ, search: str | None = SearchQ,
                 registry: Literal["system", "workspace"] | None = Query(None),
                 ctx: Context = Depends(get_ctx)) -> dict[str, dict[str, int]]:
    """For each filter (task, finetune_task, license, registry): the number of models per value
    with the *other* filters applied (the catalog page's counts)."""
    from fmhub.services.catalog_facets import catalog_facets

    return catalog_facets(ctx, task=task, finetune_task=finetune_task, license=license, search=search,
                          registry=registry)


@router.post("/import", response_model=Job, status_code=202, summary="Import a model folder (queued job)")
def import_model(body: ImportRequest, ctx: Context = Depends(get_ctx)) -> Job:
    """Checks the folder, then queues an ``import`` job; follow it under ``/jobs/{id}``."""
    from fmhub.services.job_exec import submit_import

    return submit_import(ctx, **body.model_dump())


@router.post("/register", response_model=ModelVersion, status_code=201, summary="Register a job's model")
def register_model(body: RegisterRequest, ctx: Context = Depends(get_ctx)) -> ModelVersion:
    """Registers the saved model of a completed fine-tune job as the next workspace version."""
    from fmhub.services.registration import register_job_model

    return register_job_model(ctx, body.job_id, body.name)


@router.get("/{ref}", summary="Show a model card")
def show_model(ref: str, request: Request, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """``ref`` is a catalog name or a workspace ``name[:version]``: the card, and for workspace
    models the version (lineage, metrics) and the list of versions; ``code_samples`` holds the
    fine-tune (and predict, deploy) calls for the CLI, Python and this server's REST API."""
    from fmhub.services.models import show_model as show

    return show(ctx, ref, base_url=str(request.base_url),
                needs_key=getattr(request.app.state, "key_checker", None) is not None)


@router.post("/{ref}/predict", summary="Predict with a model")
def predict(ref: str, body: PredictRequest, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Loads the model and predicts for ``inputs`` (label names, entities, answers or texts)."""
    from fmhub.services.predict import predict as run

    return run(ctx, ref, body.inputs, task=body.task, top_k=body.top_k)
