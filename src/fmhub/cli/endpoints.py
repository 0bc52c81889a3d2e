"""``fmhub endpoints``: online endpoints on an fmhub server (``--url`` / ``FMHUB_URL``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from fmhub.cli.common import JSON_OPTION, TYPER_SETTINGS, handle_errors, out, print_json
from fmhub.errors import DataError, SpecError

app = typer.Typer(help="Online endpoints: create, deploy a model, split traffic, invoke, keys, logs, delete. "
                       "They run in `fmhub serve`.", no_args_is_help=True, **TYPER_SETTINGS)

URL_OPTION = typer.Option(None, "--url", envvar="FMHUB_URL",
                          help="The fmhub server (default FMHUB_URL, else http://127.0.0.1:8000).")


def _client(url: str | None) -> Any:
    from fmhub.client import Client

    return Client(url=url)


def _print_endpoint(e: dict[str, Any]) -> None:
    out.print(f"[bold]{e['name']}[/]  {e['scoring_uri']}", highlight=False)
    table = Table(show_edge=False)
    for col in ("deployment", "model", "traffic", "state", "backend", "instances", "runtime", "batches", "mean batch"):
        table.add_column(col)
    for d in e["deployments"]:
        table.add_row(d["name"], d["model"], f"{d['traffic']}%", d.get("state", ""), d.get("backend", "local"),
                      _instances(d), str(d.get("runtime_detail") or d["runtime"]), str(d.get("batches") or ""),
                      str(d.get("mean_batch_size") or ""))
    out.print(table)
    for d in e["deployments"]:
        if d.get("error"):  # a deployment whose instance kept failing says why
            out.print(f"[red]{d['name']}[/]: {escape(d['error'])}", highlight=False)


def _instances(d: dict[str, Any]) -> str:
    """``2`` for a local deployment; ``2 (1..4)`` running replicas and bounds for a ray one."""
    if d.get("backend") != "ray":
        return str(d["instances"])
    replicas = d.get("replicas") or {}
    return f"{replicas.get('running', '-')} ({d.get('min_replicas')}..{d.get('max_replicas')})"


@app.command("create")
@handle_errors
def create_cmd(name: str = typer.Argument(..., help="Endpoint name (lower-case letters, digits, '-')."),
               description: str = typer.Option("", "--description", help="Free text."),
               url: Optional[str] = URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Create an endpoint: a stable scoring URL with two keys."""
    e = _client(url).endpoints.create(name, description)
    if as_json:
        print_json(e)
        return
    out.print(f"endpoint [bold]{name}[/] created: {e['scoring_uri']}  (keys: fmhub endpoints keys {name})",
              highlight=False)


@app.command("deploy")
@handle_errors
def deploy_cmd(name: str = typer.Argument(..., help="Endpoint name."),
               model: str = typer.Option(..., "--model", help="Workspace NAME[:VERSION] or a catalog model (with --task)."),
               deployment: str = typer.Option("blue", "--deployment", help="Deployment name (blue, green ...)."),
               instances: Optional[int] = typer.Option(None, "--instances", help="Worker processes, each with its own model copy (default: chosen from the cores and the model size - one single-threaded instance per core for a model up to 1 GiB - and shown in the deployment)."),
               device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
               runtime: str = typer.Option("auto", "--runtime", help="auto (default: the fastest CPU runtime whose metric on the model's stored test predictions stays within 0.5 points of fp32, else fp32; the deployment says which and why), pytorch (fp32; bf16 on a GPU), pytorch-bf16 (CPU, bf16 weights), pytorch-int8 (CPU, dynamic int8), onnx (CPU, ONNX Runtime, extra fmhub[onnx]; text and token classification), or vllm (chat models on a CUDA GPU, extra fmhub[vllm])."),
               task: Optional[str] = typer.Option(None, "--task", help="Task (default: the model version's)."),
               max_batch_size: int = typer.Option(32, "--max-batch-size", help="Inputs per batch at most (a CPU instance runs a batch in chunks of 8)."),
               max_batch_wait_ms: float = typer.Option(10.0, "--max-batch-wait-ms", help="Longest wait for more requests, taken only while the batch is not full and the recent arrival rate says more come within it (a lone request runs at once)."),
               max_queue: int = typer.Option(256, "--max-queue", help="Waiting requests before answering 429."),
               request_timeout_ms: float = typer.Option(30000.0, "--request-timeout-ms", help="Answer 504 after this long."),
               backend: str = typer.Option("local", "--backend", help="local (instance processes of the server) or ray "
                                           "(a Ray Serve application on the cluster at FMHUB_RAY_ADDRESS, autoscaled "
                                           "between --min-replicas and --max-replicas)."),
               min_replicas: Optional[int] = typer.Option(None, "--min-replicas", help="--backend ray: replicas kept at least (default 1)."),
               max_replicas: Optional[int] = typer.Option(None, "--max-replicas", help="--backend ray: replicas autoscaling may add up to (default: --min-replicas)."),
               url: Optional[str] = URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Deploy a model to an endpoint (replaces the model of an existing deployment of that name).
    Returns when every instance (or Ray Serve replica) has loaded the model. The first deployment
    takes all traffic. With --backend ray and --device cuda each replica gets one GPU of the cluster."""
    settings = {**({"instances": instances} if instances is not None else {}), "device": device, "runtime": runtime, "max_batch_size": max_batch_size,
                "max_batch_wait_ms": max_batch_wait_ms, "max_queue": max_queue,
                "request_timeout_ms": request_timeout_ms, **({"task": task} if task else {}),
                **({"backend": backend} if backend != "local" else {}),
                **({"min_replicas": min_replicas} if min_replicas is not None else {}),
                **({"max_replicas": max_replicas} if max_replicas is not None else {})}
    e = _client(url).endpoints.deploy(name, model, deployment, **settings)
    if as_json:
        print_json(e)
        return
    _print_endpoint(e)


@app.command("traffic")
@handle_errors
def traffic_cmd(name: str = typer.Argument(..., help="Endpoint name."),
                split: list[str] = typer.Argument(..., help="DEPLOYMENT=PERCENT ..., summing to 100, e.g. blue=90 green=10."),
                url: Optional[str] = URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Split the endpoint's traffic between its deployments."""
    parsed: dict[str, int] = {}
    for item in split:
        key, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise SpecError(f"'{item}' is not DEPLOYMENT=PERCENT", hint="e.g. blue=90 green=10")
        parsed[key.strip()] = int(value)
    e = _client(url).endpoints.traffic(name, parsed)
    if as_json:
        print_json(e)
        return
    _print_endpoint(e)


@app.command("invoke")
@handle_errors
def invoke_cmd(name: str = typer.Argument(..., help="Endpoint name."),
               data: Optional[Path] = typer.Option(None, "--data", help='A JSON request: {"input_data": [...], "params": {...}}.'),
               text: Optional[list[str]] = typer.Option(None, "--text", help="An input text (repeatable), instead of --data."),
               deployment: Optional[str] = typer.Option(None, "--deployment", help="Send to this deployment, not by traffic."),
               url: Optional[str] = URL_OPTION,
               as_json: bool = typer.Option(False, "--json", help="Print the endpoint's JSON response as it is.")) -> None:
    """Score inputs at the endpoint's scoring URL: one line per input with its prediction (with
    --json, the raw JSON response)."""
    if data is not None:
        if not data.is_file():
            raise DataError(f"request file '{data}' does not exist")
        try:
            body = json.loads(data.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{data}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})") from None
        if not isinstance(body, dict):
            raise DataError(f"{data}: expected a JSON object with input_data")
        inputs, params = body.get("input_data", body.get("inputs")), body.get("params")
    elif text:
        inputs, params = list(text), None
    else:
        raise SpecError("nothing to send", hint="give --data request.json or --text \"...\"")
    response = _client(url).endpoints.invoke(name, inputs, params, deployment=deployment)
    if as_json:
        print_json(response)
        return
    out.print(f"deployment {response.get('deployment', '?')}, model {response.get('model', '?')}", highlight=False)
    predictions = response.get("predictions", [])
    for i, prediction in enumerate(predictions if isinstance(predictions, list) else [predictions]):
        out.print(f"[{i}] " + json.dumps(prediction, ensure_ascii=False, default=str), highlight=False, markup=False)


@app.command("list")
@handle_errors
def list_cmd(url: Optional[str] = URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """List endpoints and their deployments."""
    items = _client(url).endpoints.list()
    if as_json:
        print_json({"endpoints": items})
        return
    for e in items:
        _print_endpoint(e)
    out.print(f"{len(items)} endpoint(s)")


@app.command("show")
@handle_errors
def show_cmd(name: str = typer.Argument(..., help="Endpoint name."), url: Optional[str] = URL_OPTION,
             as_json: bool = JSON_OPTION) -> None:
    """Show an endpoint: deployments, traffic, state, runtime, batching figures."""
    e = _client(url).endpoints.get(name)
    if as_json:
        print_json(e)
        return
    _print_endpoint(e)


@app.command("keys")
@handle_errors
def keys_cmd(name: str = typer.Argument(..., help="Endpoint name."),
             regenerate: Optional[str] = typer.Option(None, "--regenerate", help="primary or secondary: replace that key first."),
             url: Optional[str] = URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Print the endpoint's keys (send one as `Authorization: Bearer <key>`)."""
    keys = _client(url).endpoints.keys(name, regenerate)
    if as_json:
        print_json(keys)
        return
    out.print(f"primary:   {keys['primary_key']}\nsecondary: {keys['secondary_key']}", highlight=False)


@app.command("logs")
@handle_errors
def logs_cmd(name: str = typer.Argument(..., help="Endpoint name."), url: Optional[str] = URL_OPTION) -> None:
    """Print the endpoint's log: instance starts, loads, failures and restarts."""
    for line in _client(url).endpoints.logs(name):
        out.print(escape(line), highlight=False)  # a log line is text, not markup


@app.command("delete")
@handle_errors
def delete_cmd(name: str = typer.Argument(..., help="Endpoint name."),
               deployment: Optional[str] = typer.Option(None, "--deployment", help="Delete only this deployment."),
               yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (scripts)."),
               url: Optional[str] = URL_OPTION) -> None:
    """Delete an endpoint (or one of its deployments) and stop its instances; asks first unless
    --yes."""
    what = f"deployment {deployment} of endpoint {name}" if deployment else f"endpoint {name}"
    if not yes:
        typer.confirm(f"Delete {what} and stop its instances?", abort=True, err=True)
    client = _client(url)
    if deployment:
        client.endpoints.undeploy(name, deployment)
        out.print(f"deployment {deployment} of {name} deleted", highlight=False)
    else:
        client.endpoints.delete(name)
        out.print(f"endpoint {name} deleted", highlight=False)
