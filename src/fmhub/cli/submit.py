"""``--submit``: send a job spec to an fmhub server instead of running it in this terminal.

A server reads files only under its data roots. When it refuses a data file of the spec
(403 ``forbidden_path``) that exists on this machine, the file is uploaded as a data asset and the
job is submitted again naming that asset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmhub.cli.common import err, out, print_json

SUBMIT_HELP = "Queue the job on an fmhub server (--url / FMHUB_URL) instead of running it here."
DATA_FILES = ("train", "validation", "test")


def absolute_data_paths(spec: dict[str, Any]) -> dict[str, Any]:
    """Data files that exist here are sent as absolute paths (the server resolves them on its disk);
    ``auto``, ``none`` and data asset references are left as they are. A tag names file that
    exists here is sent as its list of names (the server never reads it)."""
    data = dict(spec.get("data") or {})
    for key in DATA_FILES:
        value = data.get(key)
        if isinstance(value, str) and value not in ("auto", "none") and Path(value).expanduser().exists():
            data[key] = str(Path(value).expanduser().resolve())
    names = data.get("tag_names")
    if isinstance(names, str) and Path(names).expanduser().is_file():
        data["tag_names"] = _read_names(Path(names).expanduser())
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


def upload_refused_files(client: Any, body: dict[str, Any], refused: Any,
                         uploaded: dict[str, str]) -> dict[str, Any] | None:
    """``body`` with each refused data file of this machine uploaded and named by its data asset.

    Args:
        client: An :class:`fmhub.client.Client`.
        body: The job spec sent.
        refused: The ``details`` of the server's ``forbidden_path`` error (``[{"field", "value"}]``);
            without them every local data file of the spec is uploaded.
        uploaded: Local path -> data asset reference, filled in (a file shared by several specs
            is uploaded once).

    Returns:
        The spec to send again, or None when a refused path is no file of this machine (nothing
        to upload: the server's error stands).
    """
    from fmhub.services.assets import default_asset_name

    data = dict(body.get("data") or {})
    fields = [d.get("field", "") for d in refused or [] if isinstance(d, dict)]
    keys = [f.split(".", 1)[1] for f in fields if f.startswith("data.") and f.split(".", 1)[1] in DATA_FILES]
    if len(keys) != len(fields):  # a refused path that is not a data file
        return None
    keys = keys or [k for k in DATA_FILES if isinstance(data.get(k), str) and Path(data[k]).is_file()]
    if not keys or not all(isinstance(data.get(k), str) and Path(data[k]).is_file() for k in keys):
        return None
    new = []
    for key in keys:
        path = str(Path(data[key]).resolve())
        if path not in uploaded:
            encoding = data.get("encoding") if data.get("encoding") not in (None, "utf-8") else None
            name = default_asset_name(Path(path)).lstrip("_")[:100] or "data"
            asset = client.data.upload(name, path, format=data.get("format"),
                                       encoding=encoding)
            uploaded[path] = asset.ref
            new.append(f"{Path(path).name} as {asset.ref}")
        data[key] = uploaded[path]
    if new:
        err.print(f"the server does not read files from this machine's paths: uploaded {', '.join(new)}",
                  highlight=False)
    return {**body, "data": data}


def submit(kind: str, spec: Any, url: str | None, as_json: bool) -> None:
    """Submit ``spec`` (a ``FinetuneSpec`` or ``EvaluateSpec``) and print the queued job."""
    submit_many(kind, [spec], url, as_json)


def submit_many(kind: str, specs: list[Any], url: str | None, as_json: bool) -> None:
    """Submit several specs in turn; ``--json`` prints one document (the job, or ``{"jobs": [...]}``).

    A data file the server refuses to read (outside its data roots) is uploaded and the spec sent
    again. A refused spec stops the loop; the jobs queued before it are listed in the error's hint.
    """
    from fmhub.client import Client
    from fmhub.errors import FmhubError

    jobs = []
    uploaded: dict[str, str] = {}
    with Client(url=url) as client:
        where = client.url
        post = client.finetune if kind == "finetune" else client.evaluate
        for spec in specs:
            body = absolute_data_paths(spec.model_dump(mode="json", exclude_unset=True))
            try:
                try:
                    jobs.append(post(body))
                except FmhubError as exc:
                    retry = upload_refused_files(client, body, exc.details, uploaded) \
                        if exc.code == "forbidden_path" else None
                    if retry is None:
                        raise
                    jobs.append(post(retry))
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
