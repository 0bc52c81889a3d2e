"""``fmhub.Client``: the REST API from Python, with typed methods.

Example::

    import fmhub

    client = fmhub.Client(url="http://127.0.0.1:8000")          # api_key=... when the server wants one
    task = client.models.get("all-MiniLM-L6-v2")["card"]["finetuning_tasks"][0]
    job = client.finetune({"model": "all-MiniLM-L6-v2", "task": task, "data": {"train": "train.csv"}})
    for event in client.jobs.follow(job.id):                     # progress until the job ends
        print(event.kind, event.data)
    job = client.jobs.wait(job.id)
    print(job.outputs["metrics"], job.outputs["registered_model"])
    print(client.models.predict(job.outputs["registered_model"], ["a witty film"]))
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from fmhub import errors
from fmhub.entities import DataAsset, Job, JobEvent, JobStatus, ModelCard, ModelVersion

DEFAULT_URL = "http://127.0.0.1:8000"
FINAL_STATUSES = ("completed", "failed", "canceled")

_ERROR_CLASSES = {cls.code: cls for cls in (errors.FmhubError, errors.NotFoundError, errors.ConflictError,
                                            errors.SpecError, errors.DataError, errors.ModelUnavailableError,
                                            errors.ImportRefusedError, errors.JobFailedError,
                                            errors.JobCanceledError, errors.UnauthorizedError,
                                            errors.PayloadTooLargeError, errors.OverloadedError,
                                            errors.UnavailableError, errors.ScoringTimeoutError,
                                            errors.ForbiddenPathError)}


class ApiError(errors.FmhubError):
    """An error answer of the server that has no class of its own (e.g. ``unauthorized``).

    Attributes:
        code: The error code from the body.
        http_status: The HTTP status.
    """

    def __init__(self, code: str, status: int, message: str, hint: str = "", details: Any = None) -> None:
        super().__init__(message, hint, details)
        self.code = code
        self.http_status = status


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json().get("error") or {}
    except ValueError:
        body = {}
    code = body.get("code", "http_error")
    message = body.get("message") or f"HTTP {response.status_code} from {response.request.url}"
    cls = _ERROR_CLASSES.get(code)
    if cls is not None and cls.http_status == response.status_code:
        raise cls(message, body.get("hint", ""), body.get("details"))
    raise ApiError(code, response.status_code, message, body.get("hint", ""), body.get("details"))


DATA_FILES = ("train", "validation", "test")


def upload_name(path: Path) -> str:
    """A data asset name for an uploaded file: ``<parent folder>-<file stem>``, e.g. ``sst2-train``."""
    raw = f"{path.parent.name}-{path.stem}" if path.parent.name else path.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-._")[:100] or "data"


def _dump(spec: BaseModel | dict[str, Any]) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_unset=True) if isinstance(spec, BaseModel) else dict(spec)


class _Resource:
    def __init__(self, client: "Client") -> None:
        self._client = client


class JobsClient(_Resource):
    """``client.jobs``: list, show, follow, wait, logs, cancel, resume."""

    def list(self, status: str | None = None, kind: str | None = None, limit: int = 50,
             offset: int = 0) -> list[Job]:
        """Jobs, newest first (one page)."""
        page = self._client.request("GET", "/jobs", params={"status": status, "kind": kind, "limit": limit,
                                                            "offset": offset})
        return [Job.model_validate(j) for j in page["items"]]

    def get(self, job_id: str) -> Job:
        """One job (raises ``NotFoundError``)."""
        return Job.model_validate(self._client.request("GET", f"/jobs/{job_id}"))

    def events(self, job_id: str, after: int = 0) -> list[JobEvent]:
        """Progress events with ``seq > after``."""
        return [JobEvent.model_validate(e) for e in self._client.request("GET", f"/jobs/{job_id}/events",
                                                                         params={"after": after})]

    def follow(self, job_id: str, poll_s: float = 1.0, timeout_s: float | None = None) -> Iterator[JobEvent]:
        """Yield events as they arrive until the job ends (completed, failed or canceled).

        Raises:
            TimeoutError: ``timeout_s`` seconds passed first.
        """
        after = 0
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            status = self.get(job_id).status.value
            for event in self.events(job_id, after):
                after = event.seq
                yield event
            if status in FINAL_STATUSES:
                for event in self.events(job_id, after):
                    yield event
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {status} after {timeout_s} s")
            time.sleep(poll_s)

    def wait(self, job_id: str, timeout_s: float | None = None, poll_s: float = 1.0) -> Job:
        """Block until the job ends and return it (its ``status`` says how it ended).

        Raises:
            TimeoutError: ``timeout_s`` seconds passed first.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            job = self.get(job_id)
            if job.status.value in FINAL_STATUSES:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status.value} after {timeout_s} s")
            time.sleep(poll_s)

    def logs(self, job_id: str, offset: int = 0) -> dict[str, Any]:
        """``{"text", "offset", "next_offset", "status"}``: the log from byte ``offset``."""
        return self._client.request("GET", f"/jobs/{job_id}/logs", params={"offset": offset})

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job (raises ``ConflictError`` when it has ended)."""
        return Job.model_validate(self._client.request("POST", f"/jobs/{job_id}/cancel"))

    def resume(self, job_id: str) -> Job:
        """Queue a failed or canceled fine-tune job to continue from its last checkpoint."""
        return Job.model_validate(self._client.request("POST", f"/jobs/{job_id}/resume"))


class ModelsClient(_Resource):
    """``client.models``: list/filter, show, import, register, predict."""

    def page(self, task: str | None = None, license: str | None = None, search: str | None = None,
             registry: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """One page: ``{"items": [card dicts], "total", "limit", "offset", "next_offset"}``."""
        return self._client.request("GET", "/models", params={"task": task, "license": license, "search": search,
                                                              "registry": registry, "limit": limit,
                                                              "offset": offset})

    def list(self, task: str | None = None, license: str | None = None, search: str | None = None,
             registry: str | None = None, limit: int = 50, offset: int = 0) -> list[ModelCard]:
        """Model cards matching the filters (one page)."""
        page = self.page(task, license, search, registry, limit, offset)
        return [ModelCard.model_validate(c) for c in page["items"]]

    def get(self, ref: str) -> dict[str, Any]:
        """``{"card", "version"?, "versions"?}`` for a catalog name or workspace ``name[:version]``."""
        return self._client.request("GET", f"/models/{ref}")

    def import_(self, path: str | Path, name: str, task: str, license: str | None = None,
                allow_pickle: bool = False, description: str = "") -> Job:
        """Queue an import of a model folder on the server's disk; returns the job."""
        body = {"path": str(path), "name": name, "task": task, "license": license, "allow_pickle": allow_pickle,
                "description": description}
        return Job.model_validate(self._client.request("POST", "/models/import", json=body))

    def register(self, job_id: str, name: str | None = None) -> ModelVersion:
        """Register the model of a completed fine-tune job run with ``register_model: false``."""
        return ModelVersion.model_validate(self._client.request("POST", "/models/register",
                                                                json={"job_id": job_id, "name": name}))

    def predict(self, ref: str, inputs: list[Any], top_k: int = 1, task: str | None = None) -> dict[str, Any]:
        """``{"model", "task", "predictions"}`` for ``inputs`` in the task's request form."""
        return self._client.request("POST", f"/models/{ref}/predict",
                                    json={"inputs": inputs, "top_k": top_k, "task": task})


class DataClient(_Resource):
    """``client.data``: register (server path or upload), list, show data assets."""

    def create(self, name: str, path: str | Path, task: str | None = None, **options: Any) -> DataAsset:
        """Register a file on the server's disk (``options``: column_mapping, format, encoding ...)."""
        body = {"name": name, "path": str(path), "task": task, **options}
        return DataAsset.model_validate(self._client.request("POST", "/data", json=body))

    def upload(self, name: str, file: str | Path, task: str | None = None, format: str | None = None,
               encoding: str | None = None) -> DataAsset:
        """Upload a local file as data asset ``name`` (the server copies and hashes it); the file
        is streamed, not read into memory. ``format`` and ``encoding`` say how to read it."""
        path = Path(file)
        params = {k: v for k, v in {"filename": path.name, "task": task, "format": format,
                                    "encoding": encoding}.items() if v is not None}
        with path.open("rb") as f:
            result = self._client.request("PUT", f"/data/{name}/upload", params=params, content=f)
        return DataAsset.model_validate(result)

    def list(self, name: str | None = None, limit: int = 50, offset: int = 0) -> list[DataAsset]:
        """Data assets, newest version first (one page)."""
        page = self._client.request("GET", "/data", params={"name": name, "limit": limit, "offset": offset})
        return [DataAsset.model_validate(a) for a in page["items"]]

    def get(self, ref: str) -> DataAsset:
        """``NAME[:VERSION]`` (latest without a version)."""
        return DataAsset.model_validate(self._client.request("GET", f"/data/{ref}"))


class EndpointsClient(_Resource):
    """``client.endpoints``: create, deploy, split traffic, keys, invoke, logs, delete."""

    def create(self, name: str, description: str = "") -> dict[str, Any]:
        """Create an endpoint (its keys: :meth:`keys`)."""
        return self._client.request("POST", "/endpoints", json={"name": name, "description": description})

    def list(self) -> list[dict[str, Any]]:
        """Endpoints with their deployments and live state."""
        return self._client.request("GET", "/endpoints")["items"]

    def get(self, name: str) -> dict[str, Any]:
        """One endpoint: deployments (model, runtime, state, traffic) and ``scoring_uri``."""
        return self._client.request("GET", f"/endpoints/{name}")

    def deploy(self, name: str, model: str, deployment: str = "blue", **settings: Any) -> dict[str, Any]:
        """Deploy ``model`` as ``deployment`` (settings: instances, device, runtime, max_batch_size,
        max_batch_wait_ms, max_queue, request_timeout_ms, task, backend, min_replicas, max_replicas);
        returns once it is loaded."""
        return self._client.request("POST", f"/endpoints/{name}/deployments",
                                    json={"name": deployment, "model": model, **settings})

    def undeploy(self, name: str, deployment: str) -> dict[str, Any]:
        """Delete one deployment."""
        return self._client.request("DELETE", f"/endpoints/{name}/deployments/{deployment}")

    def traffic(self, name: str, split: dict[str, int]) -> dict[str, Any]:
        """Route percentages, e.g. ``{"blue": 90, "green": 10}``."""
        return self._client.request("PUT", f"/endpoints/{name}/traffic", json=split)

    def keys(self, name: str, regenerate: str | None = None) -> dict[str, str]:
        """``primary_key`` and ``secondary_key`` (``regenerate="primary"`` replaces one first)."""
        if regenerate:
            return self._client.request("POST", f"/endpoints/{name}/keys/regenerate", params={"which": regenerate})
        return self._client.request("GET", f"/endpoints/{name}/keys")

    def logs(self, name: str) -> list[str]:
        """The endpoint's log lines."""
        return self._client.request("GET", f"/endpoints/{name}/logs")["lines"]

    def delete(self, name: str) -> dict[str, Any]:
        """Stop and delete an endpoint."""
        return self._client.request("DELETE", f"/endpoints/{name}")

    def invoke(self, name: str, input_data: list[Any], params: dict[str, Any] | None = None,
               key: str | None = None, deployment: str | None = None) -> dict[str, Any]:
        """Score ``input_data`` at the endpoint's scoring URL (the key is fetched when not given)."""
        key = key or self.keys(name)["primary_key"]
        headers = {"Authorization": f"Bearer {key}"}
        if deployment:
            headers["x-fmhub-deployment"] = deployment
        response = self._client._http.post(f"/endpoints/{name}/score", headers=headers,
                                           json={"input_data": input_data, "params": params or {}})
        _raise_for(response)
        return response.json()


class Client:
    """The fmhub REST API.

    Args:
        url: Server address (default ``FMHUB_URL``, else ``http://127.0.0.1:8000``).
        api_key: Key for ``Authorization: Bearer`` (default ``FMHUB_API_KEY``; needed when the server
            listens on anything but loopback).
        timeout_s: Seconds per request (submitting a job reads and checks its data first).

    Attributes:
        jobs: :class:`JobsClient`.
        models: :class:`ModelsClient`.
        data: :class:`DataClient`.
        endpoints: :class:`EndpointsClient`.
        uploads: Local file -> the data asset reference it was uploaded as, when the server refused
            to read it (outside its data roots) during :meth:`finetune` or :meth:`evaluate`.

    Errors come back as the ``FmhubError`` subclasses the server raised (``NotFoundError``,
    ``SpecError``, ``DataError`` ...) or :class:`ApiError`, with the server's message and hint.
    """

    def __init__(self, url: str | None = None, api_key: str | None = None, timeout_s: float = 300.0) -> None:
        self.url = (url or os.environ.get("FMHUB_URL") or DEFAULT_URL).rstrip("/")
        key = api_key or os.environ.get("FMHUB_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        self.jobs = JobsClient(self)
        self.models = ModelsClient(self)
        self.data = DataClient(self)
        self.endpoints = EndpointsClient(self)
        self.uploads: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v1{path}`` and return the decoded JSON (``None`` query values are dropped).

        Raises:
            FmhubError: the server's error (see the class docstring).
            httpx.TransportError: the server cannot be reached.
        """
        if "params" in kwargs:
            kwargs["params"] = {k: v for k, v in kwargs["params"].items() if v is not None}
        try:
            response = self._http.request(method, "/api/v1" + path, **kwargs)
        except httpx.ConnectError as exc:
            raise ApiError("unreachable", 0, f"cannot reach the fmhub server at {self.url}",
                           "start it with `fmhub serve`, or set FMHUB_URL / --url") from exc
        _raise_for(response)
        return response.json()

    def health(self) -> dict[str, Any]:
        """``/health`` of the server."""
        response = self._http.get("/health")
        _raise_for(response)
        return response.json()

    def finetune(self, spec: BaseModel | dict[str, Any], upload: bool = True) -> Job:
        """Submit a fine-tune job (a ``FinetuneSpec`` or its dict, as in a job YAML); returns the queued job.

        Args:
            spec: The job spec.
            upload: When the server refuses a data file outside its data roots (403
                ``forbidden_path``) that exists on this machine, upload it as a data asset and
                submit again naming the asset (recorded in :attr:`uploads`).

        Raises:
            SpecError, DataError: the spec or the data has problems (``details`` lists them).
            ForbiddenPathError: a refused path that is no file of this machine (or ``upload`` off).
        """
        return Job.model_validate(self._submit("/jobs/finetune", _dump(spec), upload)["job"])

    def evaluate(self, spec: BaseModel | dict[str, Any], upload: bool = True) -> Job:
        """Submit an evaluate job (an ``EvaluateSpec`` or its dict); returns the queued job.
        ``upload``: as for :meth:`finetune`."""
        return Job.model_validate(self._submit("/jobs/evaluate", _dump(spec), upload)["job"])

    def _submit(self, route: str, body: dict[str, Any], upload: bool) -> Any:
        try:
            return self.request("POST", route, json=body)
        except errors.FmhubError as exc:
            retry = self._upload_refused(body, exc.details) if upload and exc.code == "forbidden_path" else None
            if retry is None:
                raise
            return self.request("POST", route, json=retry)

    def _upload_refused(self, body: dict[str, Any], refused: Any) -> dict[str, Any] | None:
        """``body`` with each refused data file of this machine uploaded and named by its data
        asset; None when a refused path is no data file here (the server's error stands)."""
        data = dict(body.get("data") or {})
        fields = [d.get("field", "") for d in refused or [] if isinstance(d, dict)]
        keys = [f.removeprefix("data.") for f in fields if f.removeprefix("data.") in DATA_FILES]
        if not keys or len(keys) != len(fields) or \
                not all(isinstance(data.get(k), str) and Path(data[k]).expanduser().is_file() for k in keys):
            return None
        for key in keys:
            path = str(Path(data[key]).expanduser().resolve())
            if path not in self.uploads:
                encoding = data.get("encoding") if data.get("encoding") not in (None, "utf-8") else None
                asset = self.data.upload(upload_name(Path(path)), path, format=data.get("format"), encoding=encoding)
                self.uploads[path] = asset.ref
            data[key] = self.uploads[path]
        return {**body, "data": data}

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["ApiError", "Client", "DataClient", "EndpointsClient", "JobsClient", "ModelsClient", "JobStatus"]
