"""The fine-tune wizard's form -> :class:`~fmhub.services.specs.FinetuneSpec`, and the spec as the
YAML job file and ``curl`` command the review step shows.

Form fields are named by spec path (``data.train``, ``hyperparameters.learning_rate``,
``data.column_mapping.label``); a list-valued hyperparameter (``lora_target_modules``) is written
comma-separated; fields of the wizard itself start with ``wizard.`` and never reach
the spec. Empty fields are left out, so the spec's defaults apply.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import yaml

from fmhub.errors import SpecError
from fmhub.services.finetune_options import list_hyperparameters
from fmhub.services.specs import FinetuneSpec, build_spec
from fmhub.ui.forms import first, nested
from fmhub.ui.wizard_data import column_mapping_from_form

TOP_LEVEL = ("model", "task", "data", "hyperparameters", "registered_model_name", "compute", "resources", "device")
"""Spec fields the form fills (the checkboxes of :data:`CHECKBOXES` are read apart)."""

CHECKBOXES = ("register_model", "merge_adapter", "zero_shot")
"""Boolean spec fields the form sends as a hidden ``false`` followed by the checkbox's ``true``
(``register_model`` always goes into the spec; the others only when not their default)."""

SPLIT_MODES = {"validation": ("auto", "file"), "test": ("auto", "file", "none")}


def finetune_spec_dict(form: dict[str, list[str]]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The spec fields the form gives, and the problems only the form can have.

    ``wizard.validation`` / ``wizard.test`` pick how a split is made: ``auto`` (split from the
    training data, ``data.<split>_size``), ``file`` (``data.<split>`` holds the chosen file or data
    asset) or ``none`` (test only).

    Returns:
        (spec dict with string values, ``[{"field", "message"}]`` problems).
    """
    values = nested(form)
    spec: dict[str, Any] = {k: values[k] for k in TOP_LEVEL if k in values}
    if spec.get("compute") != "ray":  # the resource fields only mean something on a cluster
        spec.pop("resources", None)
    hp = spec.get("hyperparameters")
    if isinstance(hp, dict):
        for name in list_hyperparameters():  # written comma-separated: "q_proj, v_proj"
            if isinstance(hp.get(name), str):
                hp[name] = [part.strip() for part in hp[name].split(",") if part.strip()]
    data = dict(values.get("data") or {})
    data.pop("column_mapping", None)
    mapping = column_mapping_from_form(form)
    if mapping:
        data["column_mapping"] = mapping
    problems: list[dict[str, str]] = []
    for split, modes in SPLIT_MODES.items():
        mode = first(form, f"wizard.{split}")
        if not mode:
            continue  # as given in data.<split> (or the spec's default)
        if mode not in modes:
            problems.append({"field": f"wizard.{split}", "message": f"choose one of: {', '.join(modes)}"})
        elif mode == "file":
            data.pop(f"{split}_size", None)
            if not data.get(split):
                problems.append({"field": f"data.{split}", "message": f"upload a {split} file or choose a data asset"})
        else:
            data[split] = mode
            if mode == "none":
                data.pop(f"{split}_size", None)
    spec["data"] = data
    for name in CHECKBOXES:
        checks = form.get(name)
        if checks is None:
            continue
        value = "true" in [v.strip().lower() for v in checks]  # a hidden "false", then the checkbox's "true"
        if name == "register_model" or value != FinetuneSpec.model_fields[name].default:
            spec[name] = value  # the others only when not their default, so the job file stays short
    return spec, problems


def build_finetune_spec(form: dict[str, list[str]]) -> FinetuneSpec:
    """The form as a validated spec.

    Raises:
        SpecError: every problem at once; ``details`` holds ``{"field", "message"}`` with the field
            named as in the form (``hyperparameters.learning_rate``).
    """
    spec, problems = finetune_spec_dict(form)
    try:
        built = build_spec(FinetuneSpec, spec, "the fine-tune form")
    except SpecError as exc:
        problems.extend(exc.details or [])
        lines = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise SpecError(f"{len(problems)} problem(s) in the fine-tune form: {lines}",
                        hint="fix the fields marked", details=problems) from None
    if problems:
        lines = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise SpecError(f"{len(problems)} problem(s) in the fine-tune form: {lines}",
                        hint="fix the fields marked", details=problems)
    return built


def spec_document(spec: FinetuneSpec) -> dict[str, Any]:
    """The fields that were given (defaults left out), as JSON-ready values."""
    return spec.model_dump(mode="json", exclude_unset=True)


def spec_yaml(spec: FinetuneSpec) -> str:
    """The job file ``fmhub finetune -f job.yaml`` runs."""
    return yaml.safe_dump(spec_document(spec), sort_keys=False, allow_unicode=True)


def curl_command(base_url: str, spec: FinetuneSpec, with_key: bool = False) -> str:
    """``curl`` submitting the same job to ``POST /api/v1/jobs/finetune``.

    Args:
        base_url: The server's URL (``http://127.0.0.1:8000``), no trailing slash.
        spec: The job.
        with_key: Send ``Authorization: Bearer $FMHUB_API_KEY`` (servers that require a key).
    """
    body = json.dumps(spec_document(spec), ensure_ascii=False)
    lines = [f"curl -X POST {shlex.quote(base_url + '/api/v1/jobs/finetune')}",
             "  -H 'Content-Type: application/json'"]
    if with_key:
        lines.append('  -H "Authorization: Bearer $FMHUB_API_KEY"')
    lines.append(f"  -d {shlex.quote(body)}")
    return " \\\n".join(lines)
