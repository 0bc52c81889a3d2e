"""Code samples for a model card: the same fine-tune, predict and deploy calls written for the
command line, the Python client and the REST API, filled with the model's name, its task, the
hyperparameter defaults a job would use and the server's address. The REST bodies are the job
specs (``FinetuneSpec``, ``DeploymentSpec``) the server validates.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from typing import Any
from urllib.parse import urlsplit

HP_KEYS = ("learning_rate", "num_train_epochs", "per_device_train_batch_size")
ASSET_NAME = "train"


def served_tasks(card: dict[str, Any]) -> list[str]:
    """The card's inference tasks that fmhub can predict with and deploy (its task heads).

    Args:
        card: A model card as a dict (``ModelCard.model_dump()``).

    Returns:
        Task names in the card's order; ``[]`` for a
        base model such as a sentence encoder (it can still be fine-tuned).
    """
    from fmhub.tasks import task_names

    known = task_names()
    return [t for t in card.get("inference_tasks") or [] if t in known]


def finetune_tasks(card: dict[str, Any]) -> list[str]:
    """The card's fine-tuning tasks that this release can train."""
    from fmhub.tasks import task_names

    known = task_names()
    return [t for t in card.get("finetuning_tasks") or [] if t in known]


def model_ref(card: dict[str, Any]) -> str:
    """``name`` for a catalog card, ``name:version`` for a workspace version."""
    return f"{card['name']}:{card['version']}" if card.get("version") else card["name"]


def offline_hint(card: dict[str, Any]) -> str | None:
    """How to put a catalog model's files on this machine, or None when they are here already.

    Args:
        card: A model card as a dict, with ``available_offline`` filled.

    Returns:
        One sentence with the commands: a ``pip install`` for package sources; for hub sources the
        download, then ``fmhub models import PATH --name my-NAME --task TASK`` (a catalog name
        cannot be reused in the workspace, so the copy gets its own name).
    """
    if card.get("available_offline") is not False:
        return None
    source = card.get("source") or {}
    if source.get("kind") == "derived":
        return (f"It is built on first use from the catalog model `{source.get('base')}`: "
                "make that model available on this machine first.")
    if source.get("kind") == "local":
        return "Its folder is missing from the artifact store: import the model folder again with `fmhub models import`."
    from fmhub.catalog.sources import import_hint
    from fmhub.entities import ModelCard

    return import_hint(ModelCard.model_validate({k: v for k, v in card.items() if k in ModelCard.model_fields}))


def code_samples(card: dict[str, Any], base_url: str, task: str | None = None,
                 needs_key: bool | None = None) -> dict[str, dict[str, str]]:
    """The card page's code samples.

    Args:
        card: A model card as a dict (``ModelCard.model_dump()``).
        base_url: The server's address as the browser reached it, e.g. ``http://127.0.0.1:8000``.
        task: The fine-tuning task of the fine-tune samples (default: the card's first).
        needs_key: The server requires API keys: the samples send ``$FMHUB_API_KEY`` (None: assume
            so for any address but loopback, as ``fmhub serve`` does).

    Returns:
        ``{action: {"cli": str, "python": str, "rest": str}}`` with ``action`` among ``finetune``
        (when the card has a fine-tuning task), ``predict`` and ``deploy`` (workspace versions and
        catalog models with a task head fmhub serves).

    Raises:
        ValueError: when ``task`` is not one of the card's fine-tuning tasks.
    """
    base = base_url.rstrip("/")
    key = not _is_loopback(base) if needs_key is None else needs_key
    out: dict[str, dict[str, str]] = {}
    tunable = finetune_tasks(card)
    if task is not None and task not in tunable:
        raise ValueError(f"{card['name']} cannot be fine-tuned for {task}")
    if tunable:
        out["finetune"] = _finetune(card, task or tunable[0], base, key)
    served = served_tasks(card)
    if served:
        out["predict"] = _predict(card, served[0], base, key)
        out["deploy"] = _deploy(card, served[0], base, key)
    return out


def finetune_body(card: dict[str, Any], task: str, train: str) -> dict[str, Any]:
    """The ``POST /api/v1/jobs/finetune`` body (a ``FinetuneSpec``) of the samples."""
    from fmhub.tasks import get_task
    from fmhub.training.hyperparameters import Hyperparameters

    hp = Hyperparameters().resolve(get_task(task).default_hyperparameters, card.get("defaults") or {})
    values = {k: _number(getattr(hp, k)) for k in HP_KEYS}
    return {"model": model_ref(card), "task": task, "data": {"train": train}, "hyperparameters": values}


def _finetune(card: dict[str, Any], task: str, base: str, key: bool) -> dict[str, str]:
    from fmhub.tasks import get_task

    file, holds = get_task(task).sample_train_file
    ref = model_ref(card)
    body = finetune_body(card, task, f"{ASSET_NAME}:latest")
    hp = body["hyperparameters"]
    flags = " ".join(f"--{k.replace('_', '-')} {_cli_number(v)}" for k, v in hp.items())
    cli = (f"# {file}: {holds}\n"
           f"fmhub finetune --model {shlex.quote(ref)} --task {task} --train {file} \\\n"
           f"  {flags}\n"
           f"# --dry-run checks the data and mapping first; --submit runs it as a job on the server")
    py_body = _py(body, 4).replace(json.dumps(f"{ASSET_NAME}:latest"), "asset.ref")
    python = (f"import fmhub\n\n"
              f"{_client_line(base, key)}\n"
              f"# {file}: {holds}\n"
              f"asset = client.data.upload({_py(ASSET_NAME)}, {_py(file)}, task={_py(task)})\n"
              f"job = client.finetune({py_body})\n"
              f"job = client.jobs.wait(job.id)\n"
              f"print(job.status.value, job.outputs.get(\"metrics\"), job.outputs.get(\"registered_model\"))\n")
    auth = _auth(key)
    rest = (f"# {file}: {holds}\n"
            f"curl -X PUT{auth} --data-binary @{file} \\\n"
            f"  \"{base}/api/v1/data/{ASSET_NAME}/upload?filename={file}&task={task}\"\n"
            f"curl -X POST{auth} {base}/api/v1/jobs/finetune \\\n"
            f"  -H \"Content-Type: application/json\" \\\n"
            f"  -d {_sh_json(body)}\n"
            f"# then follow it: curl{auth} {base}/api/v1/jobs/JOB_ID")
    return {"cli": cli, "python": python, "rest": rest}


def _example_input(task: str) -> Any:
    from fmhub.tasks import get_task

    return get_task(task).score_example[0]


def _predict(card: dict[str, Any], task: str, base: str, key: bool) -> dict[str, str]:
    ref = model_ref(card)
    example = _example_input(task)
    workspace = bool(card.get("version"))
    task_flag = "" if workspace else f" --task {task}"
    if isinstance(example, dict):
        args = " ".join(f"--{k} {shlex.quote(str(v))}" for k, v in example.items())
    else:
        args = f"--text {shlex.quote(example if isinstance(example, str) else ' '.join(map(str, example)))}"
    cli = f"fmhub predict {shlex.quote(ref)}{task_flag} {args}"
    task_arg = "" if workspace else f", task={_py(task)}"
    python = (f"import fmhub\n\n"
              f"{_client_line(base, key)}\n"
              f"result = client.models.predict({_py(ref)}, {_py([example])}{task_arg})\n"
              f"print(result[\"predictions\"])\n")
    body: dict[str, Any] = {"inputs": [example]}
    if not workspace:
        body["task"] = task
    auth = _auth(key)
    rest = (f"curl -X POST{auth} {base}/api/v1/models/{ref}/predict \\\n"
            f"  -H \"Content-Type: application/json\" \\\n"
            f"  -d {_sh_json(body)}")
    return {"cli": cli, "python": python, "rest": rest}


def endpoint_name(card: dict[str, Any]) -> str:
    """An endpoint name for the samples: the model name in lower case, ``-`` for other characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", card["name"].lower()).strip("-")[:63]
    return name if len(name) >= 2 else "my-endpoint"


def deploy_body(card: dict[str, Any], task: str) -> dict[str, Any]:
    """The ``POST /api/v1/endpoints/{name}/deployments`` body (a ``DeploymentSpec``) of the samples."""
    body: dict[str, Any] = {"name": "blue", "model": model_ref(card)}
    if not card.get("version"):
        body["task"] = task  # a catalog model says which head it serves
    return body


def _deploy(card: dict[str, Any], task: str, base: str, key: bool) -> dict[str, str]:
    ref = model_ref(card)
    endpoint = endpoint_name(card)
    example = _example_input(task)
    body = deploy_body(card, task)
    task_flag = f" --task {task}" if "task" in body else ""
    text = example if isinstance(example, str) else None
    invoke = (f"fmhub endpoints invoke {endpoint} --text {shlex.quote(text)}" if text else
              f"echo {shlex.quote(json.dumps({'input_data': [example]}))} > request.json\n"
              f"fmhub endpoints invoke {endpoint} --data request.json")
    login = "export FMHUB_API_KEY=KEY  # a key from `fmhub keys create`\n" if key else ""
    cli = (f"export FMHUB_URL={base}\n{login}"
           f"fmhub endpoints create {endpoint}\n"
           f"fmhub endpoints deploy {endpoint} --model {shlex.quote(ref)} --deployment blue{task_flag}\n"
           f"{invoke}")
    task_arg = f", task={_py(task)}" if "task" in body else ""
    python = (f"import fmhub\n\n"
              f"{_client_line(base, key)}\n"
              f"client.endpoints.create({_py(endpoint)})\n"
              f"client.endpoints.deploy({_py(endpoint)}, model={_py(ref)}, deployment=\"blue\"{task_arg})\n"
              f"print(client.endpoints.invoke({_py(endpoint)}, {_py([example])}))\n")
    auth = _auth(key)
    rest = (f"curl -X POST{auth} {base}/api/v1/endpoints \\\n"
            f"  -H \"Content-Type: application/json\" -d {_sh_json({'name': endpoint}, None)}\n"
            f"curl -X POST{auth} {base}/api/v1/endpoints/{endpoint}/deployments \\\n"
            f"  -H \"Content-Type: application/json\" -d {_sh_json(body, None)}\n"
            f"# the scoring URL takes one of the endpoint's own keys\n"
            f"KEY=$(curl -s{auth} {base}/api/v1/endpoints/{endpoint}/keys | "
            f"python3 -c 'import json, sys; print(json.load(sys.stdin)[\"primary_key\"])')\n"
            f"curl -X POST {base}/endpoints/{endpoint}/score \\\n"
            f"  -H \"Authorization: Bearer $KEY\" -H \"Content-Type: application/json\" \\\n"
            f"  -d {_sh_json({'input_data': [example]}, None)}")
    return {"cli": cli, "python": python, "rest": rest}


def _number(value: Any) -> Any:
    """``3.0`` -> ``3`` (whole floats read better in samples)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _cli_number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _py(value: Any, indent: int | None = None) -> str:
    """A Python literal of JSON-like data (strings, numbers, lists, dicts; no booleans or None)."""
    return json.dumps(value, indent=indent, ensure_ascii=False)


def _sh_json(value: Any, indent: int | None = 2) -> str:
    """JSON as one shell word (single-quoted, safe for any content)."""
    return shlex.quote(json.dumps(value, indent=indent, ensure_ascii=False))


def _is_loopback(base: str) -> bool:
    host = urlsplit(base).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _auth(key: bool) -> str:
    """The API key header for servers that want one."""
    return ' -H "Authorization: Bearer $FMHUB_API_KEY"' if key else ""


def _client_line(base: str, key: bool) -> str:
    note = "  # the API key comes from FMHUB_API_KEY (or api_key=...)" if key else ""
    return f"client = fmhub.Client(url={_py(base)}){note}"
