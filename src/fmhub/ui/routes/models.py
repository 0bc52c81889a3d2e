"""The model card page: a catalog card or a workspace version with its lineage, metrics and
versions, the actions it allows and code samples for the CLI, Python and the REST API.
JSON twin: ``/api/v1/models/{ref}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from fmhub.services.context import Context
from fmhub.ui.deps import get_ctx, requires_key
from fmhub.ui.templating import render

router = APIRouter()

LANGUAGES = (("cli", "CLI"), ("python", "Python"), ("rest", "REST"))
ACTIONS = {"finetune": "Fine-tune", "predict": "Predict", "deploy": "Deploy to an endpoint"}


def card_actions(info: dict[str, Any]) -> dict[str, Any]:
    """What the page offers for a model and, where it offers nothing, why.

    Args:
        info: ``show_model(ctx, ref, base_url=...)``.

    Returns:
        ``{"finetune_tasks": [...], "evaluate": bool, "deploy": bool, "why_not_evaluate": str,
        "why_not_deploy": str, "why_not_finetune": str}``.
    """
    from fmhub.services.code_samples import finetune_tasks

    card = info["card"]
    offline = card.get("available_offline") is not False
    served = info.get("served_tasks") or []
    tunable = finetune_tasks(card)
    head = info.get("head_problem") or ("" if served else "it has no task head fmhub serves (fine-tune it first)")
    missing = "" if offline else "its files are not on this machine (see Availability)"
    return {
        "finetune_tasks": tunable if offline else [],
        "why_not_finetune": ("it has no fine-tuning task" if not tunable else missing),
        "evaluate": offline and not head,
        "why_not_evaluate": missing or head,
        "deploy": offline and not head,
        "why_not_deploy": missing or head,
    }


def scalar_metrics(metrics: dict[str, Any]) -> tuple[list[str], list[str], dict[str, dict[str, Any]]]:
    """The per-split metrics as a table: splits (columns), metric names (rows) and values.

    Nested values (per-class reports, confusion matrices) are left out; the job page shows them.
    """
    splits = [s for s, values in metrics.items() if isinstance(values, dict)]
    names: list[str] = []
    for split in splits:
        for name, value in metrics[split].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and name not in names:
                names.append(name)
    return splits, names, {s: metrics[s] for s in splits}


def adapter_of(version: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the page says of a version that is an adapter on a base model, or None.

    Args:
        version: The workspace version as a dict (``ModelVersion.model_dump()``), or None.

    Returns:
        ``{"base": the version the adapter loads on (lineage ``adapter_base_model``, else
        ``base_model``; None when not recorded), "r", "alpha", "target_modules"}`` (the LoRA settings from the lineage's hyperparameters,
        None where not recorded) when the lineage says ``adapter: true``.
    """
    lineage = (version or {}).get("lineage") or {}
    if not lineage.get("adapter"):
        return None
    hp = lineage.get("hyperparameters") or {}
    return {"base": lineage.get("adapter_base_model") or lineage.get("base_model") or (version or {}).get("base_model"),
            "r": hp.get("lora_r"), "alpha": hp.get("lora_alpha"),
            "target_modules": hp.get("lora_target_modules")}


@router.get("/models/{ref}", response_class=HTMLResponse)
def model_card(ref: str, request: Request, ctx: Context = Depends(get_ctx)) -> HTMLResponse:
    """A model's card; ``ref`` is a catalog name or a workspace ``name[:version]``.

    Raises:
        NotFoundError: no such model (shown as an error page).
    """
    from fmhub.services.evaluations import base_vs_finetuned
    from fmhub.services.models import show_model

    info = show_model(ctx, ref, base_url=str(request.base_url), needs_key=requires_key(request))
    card = info["card"]
    full_ref = f"{card['name']}:{card['version']}" if card.get("version") else card["name"]
    version = info.get("version")
    splits, metric_names, metrics = scalar_metrics((version or {}).get("metrics") or {})
    lineage = (version or {}).get("lineage") or {}
    samples = info.get("code_samples") or {}
    context = {"info": info, "card": card, "ref": full_ref, "model_version": version, "lineage": lineage,
               "adapter": adapter_of(version), "zero_shot": base_vs_finetuned((version or {}).get("metrics")),
               "actions": card_actions(info), "samples": samples, "languages": LANGUAGES,
               "action_titles": ACTIONS, "splits": splits, "metric_names": metric_names, "metrics": metrics}
    return render(request, "model_card.html", context, json_url=f"/api/v1/models/{ref}",
                  title=card.get("display_name") or card["name"])
