"""``--submit``: send a job spec to an fmhub server instead of running it in this terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmhub.cli.common import out, print_json

SUBMIT_HELP = "Queue the job on an fmhub server (--url / FMHUB_URL) instead of running it here."


def absolute_data_paths(spec: dict[str, Any]) -> dict[str, Any]:
    """Data files that exist here are sent as absolute paths (the server resolves them on its disk);
    ``auto``, ``none`` and data asset references are left as they are."""
    data = dict(spec.get("data") or {})
    for key in ("train", "validation", "test"):
        value = data.get(key)
        if isinstance(value, str) and value not in ("auto", "none") and Path(value).expanduser().exists():
            data[key] = str(Path(value).expanduser().resolve())
    return {**spec, "data": data}


def submit(kind: str, spec: Any, url: str | None, as_json: bool) -> None:
    """Submit ``spec`` (a ``FinetuneSpec`` or ``EvaluateSpec``) and print the queued job."""
    from fmhub.client import Client

    body = absolute_data_paths(spec.model_dump(mode="json", exclude_unset=True))
    with Client(url=url) as client:
        job = client.finetune(body) if kind == "finetune" else client.evaluate(body)
        where = client.url
    if as_json:
        print_json(job.model_dump(mode="json"))
        return
    out.print(f"job [bold]{job.id}[/] queued on {where}", highlight=False)
    out.print(f"follow it: fmhub jobs wait {job.id} --url {where}   (log: fmhub jobs logs {job.id} --follow --url {where})",
              highlight=False)
