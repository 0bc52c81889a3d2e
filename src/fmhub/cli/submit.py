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
    submit_many(kind, [spec], url, as_json)


def submit_many(kind: str, specs: list[Any], url: str | None, as_json: bool) -> None:
    """Submit several specs in turn; ``--json`` prints one document (the job, or ``{"jobs": [...]}``).

    A refused spec stops the loop; the jobs queued before it are listed in the error's hint.
    """
    from fmhub.client import Client
    from fmhub.errors import FmhubError

    jobs = []
    with Client(url=url) as client:
        where = client.url
        for spec in specs:
            body = absolute_data_paths(spec.model_dump(mode="json", exclude_unset=True))
            try:
                jobs.append(client.finetune(body) if kind == "finetune" else client.evaluate(body))
            except FmhubError as exc:
                if jobs:
                    queued = ", ".join(j.id for j in jobs)
                    exc.hint = (exc.hint + "; " if exc.hint else "") + f"already queued: {queued} (cancel with fmhub jobs cancel ID)"
                raise
    if as_json:
        print_json(jobs[0].model_dump(mode="json") if len(jobs) == 1
                   else {"jobs": [j.model_dump(mode="json") for j in jobs]})
        return
    for job in jobs:
        out.print(f"job [bold]{job.id}[/] queued on {where}", highlight=False)
        out.print(f"follow it: fmhub jobs wait {job.id} --url {where}   "
                  f"(log: fmhub jobs logs {job.id} --follow --url {where})", highlight=False)
