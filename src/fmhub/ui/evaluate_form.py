"""The evaluate wizard's form -> one :class:`~fmhub.services.specs.EvaluateSpec` per chosen model,
and the specs as YAML and as the equivalent ``fmhub evaluate`` command.

Form fields are named by spec path (``data.test``, ``data.column_mapping.label``, ``device``,
``per_device_eval_batch_size``, ``generation.num_beams``); ``model`` repeats, once per ticked model.
Empty fields are left out, so the spec's defaults apply.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from fmhub.errors import SpecError
from fmhub.services.specs import EvaluateSpec, build_spec
from fmhub.ui.forms import nested
from fmhub.ui.wizard_data import column_mapping_from_form

COMMON = ("task", "generation", "per_device_eval_batch_size", "max_seq_length", "device")
"""Spec fields every chosen model's spec shares (besides ``data``)."""


def chosen_models(form: dict[str, list[str]]) -> list[str]:
    """The ticked models, in form order, without blanks (the field's anchor) and repeats."""
    return list(dict.fromkeys(v.strip() for v in form.get("model", []) if v.strip()))


def evaluate_spec_dicts(form: dict[str, list[str]], choices: Iterable[Mapping[str, Any]] | None = None,
                        ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The spec fields the form gives, one dict per chosen model, and the problems only the form
    can have.

    Args:
        form: The fields from :func:`~fmhub.ui.forms.read_form`.
        choices: The models the wizard offers (:func:`~fmhub.services.evaluations.evaluation_choices`
            entries: ``ref``, ``task``, ``problem``). When given, a model that is not offered for the
            form's task, or that cannot be evaluated, is a problem of the ``model`` field.

    Returns:
        (spec dicts with string values, ``[{"field", "message"}]`` problems).
    """
    values = nested(form)
    common: dict[str, Any] = {k: values[k] for k in COMMON if k in values}
    data = dict(values.get("data") or {})
    data.pop("column_mapping", None)
    mapping = column_mapping_from_form(form)
    if mapping:
        data["column_mapping"] = mapping
    common["data"] = data
    models = chosen_models(form)
    problems: list[dict[str, str]] = []
    if not models:
        problems.append({"field": "model", "message": "choose at least one model"})
    if not data.get("test"):
        problems.append({"field": "data.test", "message": "upload a test file or choose a data asset"})
    if choices is not None:
        problems += _model_problems(models, common.get("task"), list(choices))
    return [{"model": m, **common} for m in models], problems


def _model_problems(models: list[str], task: str | None, choices: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    out = []
    for ref in models:
        offered = [c for c in choices if c["ref"] == ref]
        if not offered:
            message = f"{ref}: not a model of this workspace (or a catalog model with a task head here)"
        elif task and not any(c["task"] == task for c in offered):
            tasks = ", ".join(sorted({c["task"] for c in offered}))
            message = f"{ref} is a {tasks} model, not {task}: evaluate models of one task together"
        else:
            reason = next((c["problem"] for c in offered if c["task"] == task or not task), None)
            if not reason:
                continue
            message = f"{ref} cannot be evaluated: {reason}"
        out.append({"field": "model", "message": message})
    return out


def build_evaluate_specs(form: dict[str, list[str]],
                         choices: Iterable[Mapping[str, Any]] | None = None) -> list[EvaluateSpec]:
    """The form as validated specs, one per chosen model.

    Raises:
        SpecError: every problem at once; ``details`` holds ``{"field", "message"}`` with the field
            named as in the form (``per_device_eval_batch_size``, ``model``).
    """
    dicts, problems = evaluate_spec_dicts(form, choices)
    specs: list[EvaluateSpec] = []
    if not problems:
        try:
            specs = [build_spec(EvaluateSpec, d, "the evaluate form") for d in dicts]
        except SpecError as exc:
            problems.extend(exc.details or [{"field": "model", "message": exc.message}])
    if problems:
        lines = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise SpecError(f"{len(problems)} problem(s) in the evaluate form: {lines}",
                        hint="fix the fields marked", details=problems)
    return specs


def spec_document(spec: EvaluateSpec) -> dict[str, Any]:
    """The fields that were given (defaults left out), as JSON-ready values: the body of
    ``POST /api/v1/jobs/evaluate``."""
    return spec.model_dump(mode="json", exclude_unset=True)


def specs_yaml(specs: list[EvaluateSpec]) -> str:
    """The specs as YAML documents, one per model (``---`` between them)."""
    return yaml.safe_dump_all([spec_document(s) for s in specs], sort_keys=False, allow_unicode=True)


def cli_command(specs: list[EvaluateSpec]) -> str:
    """The ``fmhub evaluate --submit`` command that queues the same jobs (the specs differ only in
    their model)."""
    if not specs:
        return ""
    spec = specs[0]
    data = spec_document(spec).get("data") or {}
    args = ["fmhub", "evaluate"]
    for s in specs:
        args += ["--model", s.model]
    args += ["--test", spec.data.test]
    if spec.task:
        args += ["--task", spec.task]
    for key, column in spec.data.column_mapping.items():
        args += ["--map", f"{key}={column}"]
    for name, flag in (("format", "--format"), ("encoding", "--encoding"), ("on_invalid_row", "--on-invalid-row"),
                       ("label_type", "--label-type"), ("delimiter", "--delimiter"), ("group_by", "--group-by")):
        if name in data:
            args += [flag, str(data[name])]
    fields = spec.model_fields_set
    if "per_device_eval_batch_size" in fields:
        args += ["--per-device-eval-batch-size", str(spec.per_device_eval_batch_size)]
    if spec.max_seq_length:
        args += ["--max-seq-length", str(spec.max_seq_length)]
    if "device" in fields:
        args += ["--device", spec.device]
    for name, value in spec.generation.model_dump(exclude_none=True).items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    # a flag and its value a line
    lines = [" ".join(shlex.quote(a) for a in args[i:i + 2]) for i in range(0, len(args), 2)]
    lines.append("--submit")
    return " \\\n  ".join(lines)
