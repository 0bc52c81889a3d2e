"""The endpoints pages: the list with a create form (and a create-and-deploy form for
``?deploy=MODEL``), and one endpoint's page: deployments, deploy form, traffic split, keys, log and
a test console. JSON twins: ``/api/v1/endpoints`` and ``/api/v1/endpoints/{name}``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fmhub.errors import FmhubError, SpecError
from fmhub.services import endpoint_actions
from fmhub.services import endpoints as endpoints_service
from fmhub.services.context import Context
from fmhub.services.specs import DeploymentSpec, build_spec
from fmhub.ui.deps import get_ctx
from fmhub.ui.forms import first, nested, read_form
from fmhub.ui.templating import render

router = APIRouter()
STATES = {"creating": "loading", "ready": "ready", "failed": "failed", "stopped": "stopped"}
DEPLOYMENT_NAMES = ("blue", "green", "red", "yellow", "purple", "orange")
ADVANCED = ("max_batch_size", "max_batch_wait_ms", "max_queue", "request_timeout_ms")


def _runtime(request: Request) -> Any:
    return request.app.state.runtime


def _go(request: Request, url: str) -> Response:
    """After a form: htmx follows ``HX-Redirect``, a plain form post a 303."""
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _at(exc: FmhubError, field: str | None) -> FmhubError:
    """Put an error without field details next to the form field ``field``."""
    if field and exc.details is None:
        exc.details = [{"field": field, "message": exc.message}]
    return exc


def _deploy_field(message: str) -> str | None:
    low = message.lower()
    if "runtime" in low:
        return "runtime"
    if "device" in low or "gpu" in low:
        return "device"
    if "--task" in low or "registered for" in low:
        return "task"
    if low.startswith("endpoint '") and " serves " not in low:
        return None
    return "model"


def mask(key: str) -> str:
    """``fme_abc...xyz9`` -> ``fme_••••••••xyz9``: enough to tell keys apart, not to use one."""
    return f"{key[:4]}{'•' * 8}{key[-4:]}" if len(key) > 8 else "•" * 8


def _health(view: dict[str, Any]) -> str:
    """``ready`` when every deployment taking traffic has loaded; else what holds it back."""
    deployments = view["deployments"]
    if not deployments:
        return "no deployments"
    states = {STATES.get(d["state"], d["state"]) for d in deployments if d["traffic"] > 0} or \
        {STATES.get(d["state"], d["state"]) for d in deployments}
    for state in ("failed", "loading", "stopped"):
        if state in states:
            return state
    return "ready"


def _with_states(view: dict[str, Any]) -> dict[str, Any]:
    for d in view["deployments"]:
        d["ui_state"] = STATES.get(d["state"], d["state"])
    view["health"] = _health(view)
    view["loading"] = any(d["ui_state"] == "loading" for d in view["deployments"])
    return view


def _model_field(message: str, form: dict[str, list[str]]) -> str | None:
    """Where a deploy error goes: the free-text model field when the model came from it."""
    field = _deploy_field(message)
    return "model_other" if field == "model" and first(form, "model_other") else field


def _spec_from_form(form: dict[str, list[str]]) -> DeploymentSpec:
    """The deploy form's ``spec.*`` fields (the free-text model wins over the select) as a spec."""
    data = nested(form, "spec")
    other = first(form, "model_other")
    if other:
        data["model"] = other
    return build_spec(DeploymentSpec, data, "the deployment")


def _deploy_defaults(existing: list[str] | None = None) -> dict[str, Any]:
    fields = DeploymentSpec.model_fields
    taken = set(existing or [])
    name = next((n for n in DEPLOYMENT_NAMES if n not in taken), f"d{len(taken) + 1}")
    return {"name": name, "instances": fields["instances"].default, "runtime": fields["runtime"].default,
            "device": fields["device"].default, **{k: fields[k].default for k in ADVANCED}}


def _deploy_context(ctx: Context, task: str | None, model: str = "",
                    existing: list[str] | None = None) -> dict[str, Any]:
    from fmhub.services.compute_options import ray_target

    models = endpoints_service.deployable_models(ctx, task)
    refs = {m["ref"] for m in models}
    return {"models": models, "chosen": model if model in refs else "", "model_other": "" if model in refs else model,
            "tasks": endpoints_service.served_tasks(), "defaults": _deploy_defaults(existing),
            "runtimes": ["auto", "pytorch", "pytorch-bf16", "pytorch-int8", "onnx", "vllm"], "endpoint_task": task, "ray": ray_target()}


def _catalog_task(ctx: Context, model: str) -> str | None:
    """The task a catalog (system) model would serve: the first of its tasks fmhub serves."""
    from fmhub.services.models import show_model

    try:
        card = show_model(ctx, model)["card"]
    except FmhubError:
        return None
    if card.get("registry") != "system":
        return None
    served = endpoints_service.served_tasks()
    return next((t for t in card.get("inference_tasks", []) if t in served), None)


@router.get("/endpoints", response_class=HTMLResponse)
def endpoints_page(request: Request, deploy: str | None = Query(None),
                   ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """Every endpoint (deployments, traffic, health, scoring URL) and the create form; with
    ``?deploy=MODEL``, a form that creates an endpoint and deploys that model in one submit."""
    runtime, base = _runtime(request), str(request.base_url)
    items = [_with_states(endpoint_actions.describe(runtime, e, base)) for e in endpoints_service.list_endpoints(ctx)]
    context: dict[str, Any] = {"items": items, "deploy": None}
    model = (deploy or "").strip()
    if model:
        context["deploy"] = {"model": model, "endpoint_name": endpoints_service.suggest_endpoint_name(ctx, model),
                             "task": _catalog_task(ctx, model), **_deploy_context(ctx, None, model)}
    return render(request, "endpoints.html", context, json_url="/api/v1/endpoints", title="Endpoints")


@router.post("/endpoints")
async def create(request: Request, ctx: Context = Depends(get_ctx)) -> Response:
    """Create an endpoint; when the form names a model (``spec.model`` / ``model_other``), deploy it
    too, and remove the endpoint again if the deployment is refused."""
    form = await read_form(request)
    name, description = first(form, "name"), first(form, "description")
    with_deploy = "spec.model" in form or "model_other" in form
    spec = _spec_from_form(form) if with_deploy else None
    try:
        endpoints_service.create_endpoint(ctx, name, description)
    except FmhubError as exc:
        raise _at(exc, "name") from None
    if spec is not None:
        try:
            await endpoint_actions.deploy(ctx, _runtime(request), name, spec, wait=False)
        except FmhubError as exc:
            await endpoint_actions.delete(ctx, _runtime(request), name)
            exc.hint = (exc.hint + "; " if exc.hint else "") + f"endpoint '{name}' was not created"
            raise _at(exc, _model_field(exc.message, form)) from None
    return _go(request, f"/ui/endpoints/{name}")


def _endpoint_context(request: Request, ctx: Context, name: str) -> dict[str, Any]:
    from fmhub.services.models import scoring_example

    runtime = _runtime(request)
    view = _with_states(endpoint_actions.describe(runtime, endpoints_service.get_endpoint(ctx, name),
                                                  str(request.base_url)))
    task = view["deployments"][0]["task"] if view["deployments"] else None
    example = scoring_example([task]) if task else None
    keys = endpoints_service.get_keys(ctx, name)
    from fmhub.services.chat_serving import is_chat_task

    return {"ep": view, "task": task, "chat": is_chat_task(task),
            "sample": json.dumps(example["request"], indent=2, ensure_ascii=False) if example else "",
            "masked": {"primary": mask(keys["primary_key"]), "secondary": mask(keys["secondary_key"])},
            "console_key": keys["primary_key"], "log": endpoint_actions.logs(ctx, runtime, name)[-100:],
            "traffic_total": sum(d["traffic"] for d in view["deployments"]),
            **_deploy_context(ctx, task, existing=[d["name"] for d in view["deployments"]])}


@router.get("/endpoints/{name}", response_class=HTMLResponse)
def endpoint_page(name: str, request: Request, ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """One endpoint: deployments, deploy form, traffic, keys, log and the test console."""
    return render(request, "endpoint.html", _endpoint_context(request, ctx, name),
                  json_url=f"/api/v1/endpoints/{name}", title=f"Endpoint {name}")


@router.get("/endpoints/{name}/status", response_class=HTMLResponse)
def endpoint_status(name: str, request: Request, ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """The deployments table and the log (the page polls it while a deployment is loading)."""
    return render(request, "endpoint_status.html", _endpoint_context(request, ctx, name),
                  json_url=f"/api/v1/endpoints/{name}")


@router.post("/endpoints/{name}/deployments")
async def deploy(name: str, request: Request, ctx: Context = Depends(get_ctx)) -> Response:
    """Deploy a model; the page then shows it loading until its instances are ready."""
    form = await read_form(request)
    spec = _spec_from_form(form)
    try:
        await endpoint_actions.deploy(ctx, _runtime(request), name, spec, wait=False)
    except FmhubError as exc:
        raise _at(exc, _model_field(exc.message, form)) from None
    return _go(request, f"/ui/endpoints/{name}")


@router.post("/endpoints/{name}/deployments/{deployment}/delete")
async def undeploy(name: str, deployment: str, request: Request, ctx: Context = Depends(get_ctx)) -> Response:
    """Stop and remove a deployment."""
    await endpoint_actions.undeploy(ctx, _runtime(request), name, deployment)
    return _go(request, f"/ui/endpoints/{name}")


@router.post("/endpoints/{name}/traffic")
async def traffic(name: str, request: Request, ctx: Context = Depends(get_ctx)) -> Response:
    """Apply the sliders' split (``traffic.<deployment>`` = percent; they must sum to 100)."""
    split: dict[str, int] = {}
    for field, value in nested(await read_form(request), "traffic", skip_empty=False).items():
        if not isinstance(value, str) or not value.strip().isdigit():
            raise SpecError(f"traffic for '{field}' must be a whole percentage, not '{value}'",
                            details=[{"field": f"traffic.{field}", "message": "a whole number from 0 to 100"}])
        split[field] = int(value)
    endpoint_actions.route_traffic(ctx, _runtime(request), name, split)
    return _go(request, f"/ui/endpoints/{name}")


@router.post("/endpoints/{name}/keys/regenerate")
async def regenerate(name: str, request: Request, ctx: Context = Depends(get_ctx)) -> Response:
    """Replace the primary or secondary key (the old one stops working at once)."""
    which = first(await read_form(request), "which", "primary")
    endpoint_actions.regenerate_key(ctx, _runtime(request), name, which)
    return _go(request, f"/ui/endpoints/{name}")


@router.post("/endpoints/{name}/delete")
async def delete(name: str, request: Request, ctx: Context = Depends(get_ctx)) -> Response:
    """Stop every deployment and delete the endpoint."""
    await endpoint_actions.delete(ctx, _runtime(request), name)
    return _go(request, "/ui/endpoints")
