"""``--submit``: send a job spec to an fmhub server instead of running it in this terminal.

A server reads files only under its data roots. When it refuses a data file of the spec
(403 ``forbidden_path``) that exists on this machine, the client uploads the file as a data asset
and submits the job again naming that asset; this says so in one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmhub.cli.common import err, out, print_json

SUBMIT_HELP = ("Queue the job on an fmhub server (--url / FMHUB_URL) instead of running it here; a data "
               "file the server may not read is uploaded.")


def absolute_data_paths(spec: dict[str, Any]) -> dict[str, Any]:
    """Data files that exist here are sent as absolute paths (the server resolves them on its disk);
    ``auto``, ``none`` and data asset references are left as they are. A tag (or label) names file
    that exists here is sent as its list of names (the server does not read it)."""
    data = dict(spec.get("data") or {})
    for key in ("train", "validation", "test"):
        value = data.get(key)
        if isinstance(value, str) and value not in ("auto", "none") and Path(value).expanduser().exists():
            data[key] = str(Path(value).expanduser().resolve())
    for key in ("tag_names", "label_names"):
        names = data.get(key)
        if isinstance(names, str) and Path(names).expanduser().is_file():
            data[key] = _read_names(Path(names).expanduser())
    return {**spec, "data": data}


def _read_names(path: Path) -> Any:
    """A names file as the server reads one: a JSON list, else one name per line."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            return str(path)  # left to the server, which names the problem
    return [line.strip() for line in text.splitlines() if line.strip()]


def submit(kind: str, spec: Any, url: str | None, as_json: bool) -> None:
    """Submit ``spec`` (a ``FinetuneSpec`` or ``EvaluateSpec``) and print the queued job."""
    submit_many(kind, [spec], url, as_json)


def submit_many(kind: str, specs: list[Any], url: str | None, as_json: bool) -> None:
    """Submit several specs in turn; ``--json`` prints one document (the job, or ``{"jobs": [...]}``).

    A local data file the server refuses to read (outside its data roots) is uploaded once and named
    by its data asset; one line on stderr says so. A refused spec stops the loop; the jobs queued
    before it are listed in the error's hint.
    """
    from fmhub.client import Client
    from fmhub.errors import FmhubError

    jobs = []
    with Client(url=url) as client:
        where = client.url
        post = client.finetune if kind == "finetune" else client.evaluate
        for spec in specs:
            body = absolute_data_paths(spec.model_dump(mode="json", exclude_unset=True))
            known = dict(client.uploads)
            try:
                jobs.append(post(body))
            except FmhubError as exc:
                if jobs:
                    queued = ", ".join(j.id for j in jobs)
                    exc.hint = (exc.hint + "; " if exc.hint else "") + f"already queued: {queued} (cancel with fmhub jobs cancel ID)"
                raise
            new = [f"{Path(path).name} as {ref}" for path, ref in client.uploads.items() if path not in known]
            if new:
                err.print(f"the server does not read these paths (outside its data roots, or not on its machine): "
                          f"uploaded {', '.join(new)}",
                          highlight=False)
    if as_json:
        print_json(jobs[0].model_dump(mode="json") if len(jobs) == 1
                   else {"jobs": [j.model_dump(mode="json") for j in jobs]})
        return
    for job in jobs:
        out.print(f"job [bold]{job.id}[/] queued on {where}", highlight=False)
        out.print(f"follow it: fmhub jobs wait {job.id} --url {where}   "
                  f"(log: fmhub jobs logs {job.id} --follow --url {where})", highlight=False)
