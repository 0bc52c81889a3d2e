"""The job specs: one pydantic model per use case, filled alike by CLI flags, a YAML job file, a
REST body or the wizard. Unknown keys are errors, and all problems are reported at once.
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fmhub.data.mapping import parse_map_options
from fmhub.data.readers import parse_delimiter
from fmhub.errors import DataError, SpecError
from fmhub.services.compute_spec import ComputeResources, check_resources
from fmhub.services.deployment_spec import DeploymentSpec
from fmhub.training.hyperparameters import Hyperparameters


class ReadOptions(BaseModel):
    """How a data file is read and mapped (shared by every data spec).

    Attributes:
        column_mapping: Task key -> user column (``--map sentence1=review``); keys not given are
            matched automatically by name.
        format: Force a reader (``jsonl``, ``json``, ``csv``, ``tsv``, ``parquet``).
        encoding: Text encoding of CSV/TSV/JSON files.
        delimiter: CSV/TSV field separator: one character or ``comma``, ``semicolon``, ``pipe``,
            ``tab`` (stored as the character); None detects it from a CSV header (``,`` ``;`` ``|``
            or a tab) and uses a tab for TSV.
        on_invalid_row: ``error`` stops before any job and lists every bad row; ``drop`` leaves
            such rows out and lists them in the report.
        label_type: How classification labels that are numbers are read. None (default): as
            written, and labels equal as numbers but written differently (``1``, ``1.0``,
            ``01``) stop the job, naming their lines. ``string``: as written, such labels are
            separate classes. ``number``: labels equal as numbers are one class (``1``, ``1.0``
            and ``"01"`` are class ``1``; a label that is not a number is an error naming its
            line). ``int``: as ``number``, and a label that is not a whole number is an error.
        tag_names: Token classification with integer tags: the tag names in id order (``O``,
            ``B-PER``, ...), or the path of a names file (one per line, or a JSON list). The saved
            model then speaks names.
        label_names: Text classification with integer labels ``0..n-1``: the class names in id
            order (``negative``, ``positive``), comma-separated, or the path of a names file (one per
            line, or a JSON list). Label ``i`` becomes ``label_names[i]``, so the model, its card
            and its endpoint speak names.
        group_by: A column of the data files whose value names each row's group (``--group-by
            source``): test metrics are computed per group as well as overall (every task). The
            column must be in every file read; a row without a value is in group ``(none)``.
    """

    model_config = ConfigDict(extra="forbid")

    column_mapping: dict[str, str] = Field(default_factory=dict)
    format: Literal["jsonl", "json", "csv", "tsv", "parquet", "conll"] | None = None
    encoding: str = "utf-8"
    on_invalid_row: Literal["error", "drop"] = "error"
    label_type: Literal["string", "number", "int"] | None = None
    tag_names: list[str] | str | None = None
    label_names: list[str] | str | None = None  # issue 13: names of integer classes
    group_by: str | None = Field(default=None, min_length=1, max_length=200)
    # -- delimiter (CSV/TSV) --
    delimiter: str | None = None

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        try:
            return parse_delimiter(value)
        except DataError as exc:
            raise ValueError(f"{exc.message} ({exc.hint})") from None

    def label_options(self) -> dict[str, Any]:
        """The options the task's :meth:`~fmhub.tasks.base.Task.apply_label_options` takes."""
        options = {"label_type": self.label_type, "tag_names": self.tag_names}
        options["label_names"] = self.label_names
        return options


class DataSpec(ReadOptions):
    """Where the data comes from and how its columns map to the task's keys.

    Attributes:
        train: Training file (JSONL, JSON, CSV, TSV, Parquet).
        validation: A file, ``auto`` (split from train) or ``none``.
        test: A file, ``auto`` (split from train) or ``none`` (no test evaluation).
        validation_size / test_size: Fractions of the training file for automatic splits
            (default 0.1 each: an 80/10/10 split, stratified on the label, seeded).
        Reading options: see :class:`ReadOptions`.
    """

    train: str
    validation: str = "auto"
    test: str = "auto"
    validation_size: float = Field(default=0.1, ge=0, lt=1)
    test_size: float = Field(default=0.1, ge=0, lt=1)


class GenerationSpec(BaseModel):
    """Decoding settings for the text-to-text tasks (None: the model card's default, else
    greedy decoding of up to 64 new tokens).

    Attributes:
        num_beams: Beam width (1 = greedy).
        max_new_tokens: Longest generated text, in tokens.
        length_penalty: Beam-search length penalty (> 1 favours longer outputs).
    """

    model_config = ConfigDict(extra="forbid")

    num_beams: int | None = Field(default=None, ge=1, le=64)
    max_new_tokens: int | None = Field(default=None, ge=1, le=131072)
    length_penalty: float | None = Field(default=None, allow_inf_nan=False)

    def options(self) -> dict[str, Any]:
        """The settings that were given, as ``generate`` keyword arguments."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class FinetuneSpec(BaseModel):
    """A fine-tuning job.

    Attributes:
        model: Catalog name (``all-MiniLM-L6-v2``) or workspace ``name[:version]``.
        task: One of the five fine-tuning tasks.
        data: Data and column mapping.
        hyperparameters: Training hyperparameters; missing ones take documented defaults.
        registered_model_name: Workspace name for the result (default ``<model>-<task>``).
        register_model: Register the fine-tuned model as a new workspace version.
        compute: ``local`` (this machine) or ``ray`` (the Ray cluster at ``FMHUB_RAY_ADDRESS``).
        resources: What a ``ray`` job asks of the cluster (workers, CPUs, GPUs, custom resources).
        device: ``auto`` (a CUDA GPU when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        generation: Decoding settings for the evaluation of a text-to-text task.
        merge_adapter: A LoRA fine-tune registers its adapter (a few MB, loaded on its base) by
            default; True registers the merged full model instead (``--merge``).
        zero_shot: For tasks whose base model answers without training (chat): also evaluate the
            base model on the test split with the same generation settings, as ``test_zero_shot``
            (``--no-zero-shot`` skips it).
    """

    model_config = ConfigDict(extra="forbid")

    model: str
    task: str
    data: DataSpec
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    registered_model_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
    register_model: bool = True
    compute: Literal["local", "ray"] = "local"
    resources: ComputeResources = Field(default_factory=ComputeResources)
    device: str = "auto"
    merge_adapter: bool = False
    zero_shot: bool = True

    @model_validator(mode="after")
    def _resources_need_ray(self) -> FinetuneSpec:
        check_resources(self.compute, self.resources)
        return self

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: str) -> str:
        from fmhub.tasks import task_names

        if value not in task_names():
            raise ValueError(f"unknown task '{value}'; choose one of {', '.join(task_names())}")
        return value

    def output_name(self) -> str:
        """The workspace model name the result is registered under."""
        if self.registered_model_name:
            return self.registered_model_name
        base = self.model.split(":", 1)[0]
        return f"{base}-{self.task}"


__all__ = ["ComputeResources", "DeploymentSpec", "DataSpec", "EvaluateDataSpec", "EvaluateSpec", "FinetuneSpec", "GenerationSpec", "build_spec", "deep_merge", "load_spec_file", "parse_map_options"]


def _format_errors(exc: ValidationError, where: str) -> SpecError:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            close = nearest_key(str(err["loc"][-1]), model_fields_at(exc.title, err["loc"][:-1]))
            if close:
                msg += f" (did you mean '{close}'?)"
        elif err["type"] == "missing":
            msg = "required"
        else:
            msg = _range_message(err) or err["msg"].removeprefix("Value error, ")
        problem = {"field": loc, "message": msg}
        flag = spec_flag(err["loc"])
        if flag and err["type"] != "extra_forbidden":
            problem["flag"] = flag
        problems.append(problem)
    lines = "; ".join(f"{p['field']}: {p['message']} (flag {p['flag']})" if p.get("flag")
                      else f"{p['field']}: {p['message']}" for p in problems)
    return SpecError(f"{len(problems)} problem(s) in {where}: {lines}",
                     hint="fix the fields named (`--help` lists every option)", details=problems)


# -- flags named in errors (issue 13: every out-of-range value names its flag) ---------------------
FLAG_OF_FIELD = {"column_mapping": "--map", "register_model": "--no-register", "hyperparameters": None,
                 "generation": None, "data": None, "merge_adapter": "--merge", "zero_shot": "--no-zero-shot"}
"""Spec fields whose command-line flag is not ``--`` + the field name with dashes (None: no flag)."""

_BOUNDS = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
           "less_than_equal": ("<=", "le"), "less_than": ("<", "lt")}


def spec_flag(loc: tuple[Any, ...]) -> str | None:
    """The command-line flag of the spec field at ``loc``: ``("hyperparameters", "doc_stride")`` ->
    ``--doc-stride`` (the CLI, YAML file, REST body and wizard share the names)."""
    names = [p for p in loc if isinstance(p, str)]
    if not names:
        return None
    field = names[-1]
    if field in FLAG_OF_FIELD:
        return FLAG_OF_FIELD[field]
    return "--" + field.replace("_", "-")


def _range_message(err: Any) -> str | None:
    """``must be >= 1 (got 0)`` for a pydantic bound error, else None."""
    bound = _BOUNDS.get(err.get("type", ""))
    if bound is None:
        return None
    op, key = bound
    value = err.get("input")
    shown = value if isinstance(value, (int, float, str)) else repr(value)
    return f"must be {op} {(err.get('ctx') or {}).get(key)} (got {shown})"


def model_fields_at(title: str, loc: tuple[Any, ...]) -> list[str]:
    """Field names of the spec model named ``title`` at nested location ``loc`` (for suggestions)."""
    models = {cls.__name__: cls for cls in (FinetuneSpec, DataSpec, EvaluateSpec, EvaluateDataSpec)}
    return fields_at(models.get(title), loc)


def fields_at(model: Any, loc: tuple[Any, ...]) -> list[str]:
    """Field names of the pydantic model nested in ``model`` at location ``loc`` (field names; list
    indexes and dict keys are stepped over), or ``[]`` when there is no model there.

    Args:
        model: A pydantic model class (or None).
        loc: A validation error's location below ``model``, without the unknown key itself.
    """
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        if isinstance(part, int) or str(part) not in model.model_fields:
            continue  # a list index or a dict key: the item model is already ``model``
        model = _inner_model(model.model_fields[str(part)].annotation)
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _inner_model(annotation: Any) -> Any:
    """The pydantic model in ``annotation`` (``Model``, ``Model | None``, ``list[Model]``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def nearest_key(key: str, known: list[str]) -> str | None:
    """The known key nearest to an unknown ``key`` (``learning_rat`` -> ``learning_rate``), or None
    when none is close (difflib ratio under 0.6)."""
    close = difflib.get_close_matches(key, known, n=1)
    return close[0] if close else None


def build_spec(model_cls: type[BaseModel], data: dict[str, Any], where: str) -> Any:
    """Validate ``data`` into ``model_cls``; every problem is reported at once.

    Raises:
        SpecError: listing each invalid or unknown field.
    """
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise _format_errors(exc, where) from None


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) job file into a dict.

    Raises:
        SpecError: when the file is missing, not YAML, or not a mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"job file '{p}' does not exist", hint="give the path of a YAML job file with -f")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"job file '{p}' is not valid YAML{where}: {getattr(exc, 'problem', exc)}",
                        hint="check the indentation and quoting there") from None
    if not isinstance(data, dict):
        raise SpecError(f"job file '{p}' must hold a mapping (key: value), not {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into ``base`` recursively (flags override the job file)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class EvaluateDataSpec(ReadOptions):
    """The test data of an evaluation (reading options: see :class:`ReadOptions`)."""

    test: str


class EvaluateSpec(BaseModel):
    """An evaluation job: a model's metrics on the user's test data.

    Attributes:
        model: Workspace ``name[:version]`` (or a catalog model with a task head).
        task: The task (default: the model version's task).
        data: Test file and column mapping.
        per_device_eval_batch_size: Rows per forward pass.
        max_seq_length: Truncation limit in tokens (None: the model version's fine-tuning value,
            else 512).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        generation: Decoding settings (text-to-text tasks).
        max_predict_samples: Smoke runs: score the first N test rows only (None: all).
        compute: ``local`` (this machine) or ``ray`` (the Ray cluster at ``FMHUB_RAY_ADDRESS``).
        resources: What a ``ray`` job asks of the cluster (one worker: ``num_workers`` must be 1).
    """

    model_config = ConfigDict(extra="forbid")

    model: str
    task: str | None = None
    data: EvaluateDataSpec
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    per_device_eval_batch_size: int = Field(default=64, ge=1, le=65536)
    max_seq_length: int | None = Field(default=None, ge=8, le=131072)
    device: str = "auto"
    max_predict_samples: int | None = Field(default=None, ge=1)  # issue 13: smoke runs
    compute: Literal["local", "ray"] = "local"
    resources: ComputeResources = Field(default_factory=ComputeResources)

    @model_validator(mode="after")
    def _one_worker(self) -> EvaluateSpec:
        check_resources(self.compute, self.resources)
        if self.resources.num_workers != 1:
            raise ValueError("an evaluation runs on one worker (resources.num_workers must be 1)")
        return self
