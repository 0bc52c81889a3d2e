"""Online endpoints as records: create, list, show, delete; deployments; traffic; keys.

The processes that serve them live in :mod:`fmhub.services.serving` (in ``fmhub serve``).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from fmhub.entities import Deployment, Endpoint
from fmhub.errors import NotFoundError, SpecError
from fmhub.services.context import Context
from fmhub.services.models import resolve_model
from fmhub.serving.chat_dispatch import serves_conversations
from fmhub.serving.sizing import default_instances, weights_bytes
from fmhub.services.specs import DeploymentSpec
from fmhub.store import endpoint_logs_repo, endpoints_repo

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def new_key() -> str:
    """A random endpoint key (256 bits, URL-safe)."""
    return "fme_" + secrets.token_urlsafe(32)


def create_endpoint(ctx: Context, name: str, description: str = "") -> Endpoint:
    """Create an endpoint with two fresh keys.

    Raises:
        SpecError: an invalid name. ConflictError: the name is taken.
    """
    if not NAME_RE.match(name):
        raise SpecError(f"'{name}' is not a valid endpoint name",
                        hint="use 2-63 lower-case letters, digits and '-', starting with a letter or digit")
    return endpoints_repo.create_endpoint(ctx.db_url, name, description, new_key(), new_key())


def get_endpoint(ctx: Context, name: str) -> Endpoint:
    """An endpoint with its deployments (raises ``NotFoundError``)."""
    return endpoints_repo.get_endpoint(ctx.db_url, name)


def list_endpoints(ctx: Context) -> list[Endpoint]:
    """All endpoints."""
    return endpoints_repo.list_endpoints(ctx.db_url)


def delete_endpoint(ctx: Context, name: str) -> None:
    """Delete an endpoint and its deployments (raises ``NotFoundError``)."""
    endpoints_repo.delete_endpoint(ctx.db_url, name)


def plan_deployment(ctx: Context, endpoint: str, spec: DeploymentSpec) -> Deployment:
    """Check a deployment (endpoint exists, model resolves, task known, trained head) and
    record it; the first deployment of an endpoint gets 100% of its traffic.

    Raises:
        NotFoundError: no such endpoint or model. SpecError: the task cannot be known.
    """
    from fmhub.tasks import get_task

    current = endpoints_repo.get_endpoint(ctx.db_url, endpoint)
    resolved = resolve_model(ctx, spec.model)
    task = spec.task or (resolved.version.task if resolved.version else None)
    if task is None:
        raise SpecError(f"'{spec.model}' is a catalog model; say which task it serves with --task")
    get_task(task)
    if resolved.version is not None and task != resolved.version.task:
        raise SpecError(f"model '{resolved.ref}' was registered for {resolved.version.task}, not {task}",
                        hint=f"leave --task out, or deploy a {task} model")
    others = {d.task for d in current.deployments if d.name != spec.name}
    if others and task not in others:
        raise SpecError(f"endpoint '{endpoint}' serves {', '.join(sorted(others))}; a {task} deployment "
                        "would give its callers answers of another shape", hint="create another endpoint for it")
    from fmhub.devices import choose_device

    _check_chat_runtime(spec, task)
    if spec.backend == "ray":
        on_gpu = _check_ray_cluster(spec)
    else:
        on_gpu = choose_device(spec.device).is_cuda  # a missing GPU is an error now, not a failed instance later
    if spec.runtime in ("pytorch-int8", "onnx") and on_gpu:
        raise SpecError(f"runtime {spec.runtime} runs on the CPU only", hint="use --device cpu, or --runtime pytorch")
    if spec.runtime == "onnx":
        _check_onnx(task)
    _check_head(resolved.path, resolved.ref, task)
    if spec.instances is None:
        spec = spec.model_copy(update={"instances": 1 if spec.backend == "ray" else default_instances(
            chat=serves_conversations(task), on_gpu=on_gpu, model_bytes=model_weights_bytes(resolved))})
    existing = {d.name: d for d in current.deployments}
    traffic = existing[spec.name].traffic if spec.name in existing else (0 if current.deployments else 100)
    deployment = Deployment(endpoint=endpoint, name=spec.name, model=resolved.ref, task=task, traffic=traffic,
                            **spec.model_dump(exclude={"name", "model", "task"}))
    endpoints_repo.upsert_deployment(ctx.db_url, deployment)
    return deployment


def _check_onnx(task: str) -> None:
    """Refuse ``--runtime onnx`` for a task it does not serve or where ONNX Runtime is missing.

    Raises:
        SpecError: naming what works instead.
    """
    from fmhub.serving.runtimes import onnx_available
    from fmhub.tasks import get_task

    if not get_task(task).onnx_logits:
        raise SpecError(f"runtime onnx serves the tasks that predict from logits alone (text and token "
                        f"classification), not {task}", hint="use --runtime auto (the default) or pytorch")
    if not onnx_available():
        raise SpecError("runtime onnx needs ONNX Runtime, which is not installed here",
                        hint="pip install 'fmhub[onnx]', or use --runtime auto (the default)")


def model_weights_bytes(resolved: Any) -> int:
    """Bytes of a resolved model's weights (its base model's for a LoRA adapter), for the
    instance count (:func:`fmhub.serving.sizing.default_instances`)."""
    own = weights_bytes(resolved.path)
    base = getattr(resolved, "base_path", None)
    return max(own, weights_bytes(base)) if base else own


def _check_chat_runtime(spec: DeploymentSpec, task: str) -> None:
    """Refuse what a chat deployment cannot run on: backend ray (Serve's handles would have to
    stream replies), runtime vllm off a CUDA machine with vllm, pytorch-int8; and vllm for the
    other tasks.

    Raises:
        SpecError: naming what works instead.
    """
    if not serves_conversations(task):
        if spec.runtime == "vllm":
            raise SpecError(f"runtime vllm serves chat deployments only, not {task}",
                            hint="use --runtime auto (the default), pytorch, pytorch-bf16, pytorch-int8 or onnx")
        return
    if spec.backend == "ray":
        raise SpecError(f"{task} deployments run on backend local only for now (backend ray does not "
                        "stream replies yet)", hint="deploy with --backend local (the default); add --instances N "
                        "for more throughput, or --device cuda on a machine with a GPU")
    if spec.runtime in ("pytorch-int8", "pytorch-bf16", "onnx"):
        raise SpecError(f"runtime {spec.runtime} serves the classic tasks, not {task}",
                        hint="use --runtime pytorch (continuous batching), or --runtime vllm on a CUDA machine")
    if spec.runtime == "vllm":
        from fmhub.serving.vllm_engine import vllm_problem

        problem = vllm_problem(spec.device)
        if problem is not None:
            raise SpecError(f"runtime vllm cannot run here: {problem}",
                            hint="deploy with --runtime pytorch (continuous batching on CPU or GPU), or install "
                                 "fmhub[vllm] on a machine with a CUDA GPU and deploy with --device cuda")


def _check_ray_cluster(spec: DeploymentSpec) -> bool:
    """Refuse a ``ray`` deployment the cluster cannot host before anything starts; returns whether
    its replicas run on GPUs.

    Raises:
        ComputeUnavailableError: no cluster configured or it does not answer (see
            :func:`fmhub.raycluster.connect`). SpecError: ``--device cuda`` on a cluster without GPUs.
    """
    from fmhub import raycluster

    on_gpu = spec.device.startswith("cuda")
    cluster = raycluster.cluster_resources()
    if on_gpu and cluster.gpus < 1:
        raise SpecError(f"--device {spec.device} asks one GPU per replica; {cluster.describe()}",
                        hint="deploy with --device cpu, or add a node with a GPU to the cluster")
    # Each replica takes one CPU (and one GPU on cuda): min_replicas must fit the cluster in all, or
    # Serve would wait for nodes that never come. Other applications may hold some of it already.
    kind, have = ("GPUs", cluster.gpus) if on_gpu else ("CPUs", cluster.cpus)
    wanted = spec.min_replicas or 1
    if wanted > have:
        raise SpecError(f"min_replicas {wanted} asks {wanted} {kind} (one per replica); {cluster.describe()}",
                        hint=f"deploy with --min-replicas {max(int(have), 1)} or fewer (autoscaling may add up to "
                             "--max-replicas when the cluster grows), or add nodes to the cluster")
    return on_gpu


def _check_head(path, ref: str, task: str) -> None:
    """Refuse a model whose task head was never trained (placeholder labels ``LABEL_0`` ...)."""
    from fmhub.services.models import head_problem

    problem = head_problem(path, task)
    if problem is not None:
        raise SpecError(f"model '{ref}' cannot be deployed for {task}: {problem}",
                        hint=f"fine-tune it first: fmhub finetune --model {ref} --task {task} --train FILE")


def delete_deployment(ctx: Context, endpoint: str, name: str) -> Endpoint:
    """Remove a deployment; its traffic share goes to the deployments left, in proportion to their
    shares (so the recorded split is the one requests follow: 50/50 blue/green without green is
    blue 100). Deployments at 0% stay at 0%.

    Raises:
        NotFoundError: no such endpoint or deployment.
    """
    changed = endpoints_repo.delete_deployment(ctx.db_url, endpoint, name)
    shares = {d.name: d.traffic for d in changed.deployments}
    total = sum(shares.values())
    if 0 < total < 100:
        return endpoints_repo.set_traffic(ctx.db_url, endpoint, rescaled(shares))
    return changed


def rescaled(shares: dict[str, int]) -> dict[str, int]:
    """Integer percentages in the same proportions as ``shares``, summing to 100 (largest remainder).

    Args:
        shares: Deployment name -> percentage; their sum is above 0.

    Returns:
        Deployment name -> percentage, summing to 100; a 0 stays 0.
    """
    total = sum(shares.values())
    exact = {k: v * 100 / total for k, v in shares.items()}
    out = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: exact[k] - out[k], reverse=True)[:100 - sum(out.values())]:
        out[k] += 1
    return out


def set_traffic(ctx: Context, endpoint: str, traffic: dict[str, int]) -> Endpoint:
    """Route ``traffic`` percentages (deployment name -> 0..100, summing to 100).

    Raises:
        SpecError: unknown deployment names, values outside 0..100, or a sum other than 100.
    """
    current = endpoints_repo.get_endpoint(ctx.db_url, endpoint)
    names = {d.name for d in current.deployments}
    unknown = sorted(set(traffic) - names)
    if unknown:
        raise SpecError(f"endpoint '{endpoint}' has no deployment {', '.join(unknown)}",
                        hint=f"its deployments: {', '.join(sorted(names)) or 'none'}")
    bad = {k: v for k, v in traffic.items() if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 100}
    if bad:
        raise SpecError(f"traffic percentages must be integers from 0 to 100: {bad}")
    if sum(traffic.values()) != 100:
        raise SpecError(f"traffic percentages sum to {sum(traffic.values())}, not 100",
                        hint="e.g. blue=90 green=10")
    return endpoints_repo.set_traffic(ctx.db_url, endpoint, traffic)


def get_keys(ctx: Context, endpoint: str) -> dict[str, str]:
    """``{"primary_key", "secondary_key"}`` of an endpoint."""
    primary, secondary = endpoints_repo.get_keys(ctx.db_url, endpoint)
    return {"primary_key": primary, "secondary_key": secondary}


def regenerate_key(ctx: Context, endpoint: str, which: str = "primary") -> dict[str, str]:
    """Replace the ``primary`` or ``secondary`` key; the old one stops working at once.

    Raises:
        SpecError: ``which`` is neither.
    """
    if which not in ("primary", "secondary"):
        raise SpecError(f"unknown key '{which}'", hint="use primary or secondary")
    endpoints_repo.set_key(ctx.db_url, endpoint, which, new_key())
    return get_keys(ctx, endpoint)


def served_tasks() -> list[str]:
    """The tasks an endpoint can serve."""
    from fmhub.tasks import task_names

    return task_names()


def deployable_models(ctx: Context, task: str | None = None) -> list[dict[str, str]]:
    """Workspace model versions an endpoint can serve (their task is one fmhub serves).

    Args:
        ctx: Service context.
        task: Only versions of this task.

    Returns:
        ``[{"ref": "name:version", "task": ...}]``, by name, newest version first.
    """
    from fmhub.store import models_repo

    served = set(served_tasks())
    return [{"ref": v.ref, "task": v.task} for v in models_repo.list_versions(ctx.db_url)
            if v.task in served and (task is None or v.task == task)]


def suggest_endpoint_name(ctx: Context, model: str) -> str:
    """A free endpoint name derived from a model reference (``My_Model:3`` -> ``my-model``,
    then ``my-model-2`` ... when taken)."""
    base = re.sub(r"[^a-z0-9-]+", "-", model.partition(":")[0].rsplit("/", 1)[-1].lower()).strip("-")[:56]
    base = base if len(base) >= 2 else f"endpoint-{base}".rstrip("-")
    taken = {e.name for e in endpoints_repo.list_endpoints(ctx.db_url)}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


__all__ = ["NotFoundError", "create_endpoint", "delete_deployment", "delete_endpoint", "deployable_models", "get_endpoint",
           "get_keys", "list_endpoints", "plan_deployment", "regenerate_key", "served_tasks", "set_traffic",
           "suggest_endpoint_name"]


def log_lines(ctx: Context, endpoint: str) -> list[str]:
    """The endpoint's log as the servers wrote it (the last 500 lines, oldest first)."""
    return endpoint_logs_repo.tail(ctx.db_url, endpoint)


def remove_log(ctx: Context, endpoint: str) -> None:
    """Delete an endpoint's log (with the endpoint)."""
    endpoint_logs_repo.remove(ctx.db_url, endpoint)
