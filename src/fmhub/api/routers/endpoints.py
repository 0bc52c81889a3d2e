"""``/api/v1/endpoints``: create, list, show, delete online endpoints; deploy models; split
traffic; keys; logs. The scoring URL itself is in :mod:`fmhub.api.routers.scoring`."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from fmhub.api.deps import get_ctx
from fmhub.services import endpoint_actions
from fmhub.services import endpoints as endpoints_service
from fmhub.services.context import Context
from fmhub.services.specs import DeploymentSpec

router = APIRouter(prefix="/endpoints", tags=["endpoints"])


class CreateEndpoint(BaseModel):
    """A new endpoint (keys are generated)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="2-63 lower-case letters, digits and '-'; the scoring URL is /endpoints/{name}/score.")
    description: str = ""


def _runtime(request: Request) -> Any:
    return request.app.state.runtime


def _view(request: Request, endpoint: Any) -> dict[str, Any]:
    return endpoint_actions.describe(_runtime(request), endpoint, str(request.base_url))


@router.post("", status_code=201, summary="Create an endpoint")
def create(body: CreateEndpoint, request: Request, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Creates the endpoint and its two keys (see ``/keys``)."""
    return _view(request, endpoints_service.create_endpoint(ctx, body.name, body.description))


@router.get("", summary="List endpoints")
def list_all(request: Request, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Every endpoint with its deployments and their live state."""
    items = [_view(request, e) for e in endpoints_service.list_endpoints(ctx)]
    return {"items": items, "total": len(items)}


@router.get("/{name}", summary="Show an endpoint")
def show(name: str, request: Request, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Deployments (model, runtime, instances, state, traffic) and the scoring URI."""
    return _view(request, endpoints_service.get_endpoint(ctx, name))


@router.delete("/{name}", summary="Delete an endpoint")
async def delete(name: str, request: Request, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Stops its deployments and deletes it."""
    await endpoint_actions.delete(ctx, _runtime(request), name)
    return {"deleted": name}


@router.post("/{name}/deployments", status_code=201, summary="Deploy a model")
async def deploy(name: str, spec: DeploymentSpec, request: Request, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Records the deployment and starts its instances; it answers once every instance has loaded
    the model (``state: ready``). The first deployment of an endpoint takes all its traffic."""
    return _view(request, await endpoint_actions.deploy(ctx, _runtime(request), name, spec, wait=True))


@router.delete("/{name}/deployments/{deployment}", summary="Delete a deployment")
async def undeploy(name: str, deployment: str, request: Request, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Stops the deployment's instances and deletes it."""
    return _view(request, await endpoint_actions.undeploy(ctx, _runtime(request), name, deployment))


@router.put("/{name}/traffic", summary="Split traffic")
async def traffic(name: str, body: dict[str, int], request: Request, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """``{"blue": 90, "green": 10}``: percentages summing to 100; deployments not named get 0."""
    return _view(request, endpoint_actions.route_traffic(ctx, _runtime(request), name, body))


@router.get("/{name}/keys", summary="The endpoint's keys")
def keys(name: str, ctx: Context = Depends(get_ctx)) -> dict[str, str]:
    """``primary_key`` and ``secondary_key``; either one authorizes scoring."""
    return endpoints_service.get_keys(ctx, name)


@router.post("/{name}/keys/regenerate", summary="Regenerate a key")
def regenerate(name: str, request: Request, which: Literal["primary", "secondary"] = "primary",
               ctx: Context = Depends(get_ctx)) -> dict[str, str]:
    """The old key stops working at once."""
    return endpoint_actions.regenerate_key(ctx, _runtime(request), name, which)


@router.get("/{name}/logs", summary="The endpoint's log")
def logs(name: str, request: Request, ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Instance starts, loads, failures and restarts (the last 500 lines)."""
    return {"lines": endpoint_actions.logs(ctx, _runtime(request), name)}
