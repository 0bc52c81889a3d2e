"""Counts per filter value for the catalog's filters (faceted search).

Each facet is counted with every *other* filter applied, the usual faceted-search rule: choosing
``license=mit`` still shows how many models each other license has under the same task and search.
System cards are counted in memory; workspace models with grouped queries on their latest versions.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fmhub.catalog.cards import filter_cards, load_system_cards
from fmhub.services.context import Context
from fmhub.services.models import check_catalog_filters
from fmhub.store import models_repo

FACETS = ("task", "finetune_task", "license", "registry")
"""The catalog's filters with counts, in the order the UI shows them."""


def _system_counts(cards: list, facet: str) -> Counter:
    counts: Counter = Counter()
    for card in cards:
        if facet == "task":
            counts.update(set(card.inference_tasks) | set(card.finetuning_tasks))
        elif facet == "finetune_task":
            counts.update(card.finetuning_tasks)
        elif facet == "license":
            counts[card.license.lower()] += 1
        else:
            counts["system"] += 1
    return counts


def catalog_facets(ctx: Context, task: str | None = None, finetune_task: str | None = None,
                   license: str | None = None, search: str | None = None,
                   registry: str | None = None) -> dict[str, dict[str, int]]:
    """Number of catalog models per value of each filter, given the other filters.

    Args:
        ctx: Service context.
        task / finetune_task / license / search / registry: The filters of
            :func:`fmhub.services.models.page_models`.

    Returns:
        ``{"task": {TASK: 9, ...}, "finetune_task": {...}, "license": {...},
        "registry": {"system": 12, "workspace": 3}}``, each sorted by count (largest first), then value.

    Raises:
        SpecError: an unknown task or registry.
    """
    check_catalog_filters(task=task, finetune_task=finetune_task, registry=registry, license=license, ctx=ctx)
    filters: dict[str, Any] = {"task": task, "finetune_task": finetune_task, "license": license,
                               "search": search, "registry": registry}
    cards = load_system_cards()
    out: dict[str, dict[str, int]] = {}
    for facet in FACETS:
        f = {**filters, facet: None}
        counts: Counter = Counter()
        if f["registry"] in (None, "system"):
            kept = filter_cards(cards, task=f["task"], license=f["license"], search=f["search"],
                                finetune_task=f["finetune_task"])
            counts.update(_system_counts(kept, facet))
        if f["registry"] in (None, "workspace") and not (f["task"] and f["finetune_task"]
                                                          and f["task"] != f["finetune_task"]):
            ws_task = f["task"] or f["finetune_task"]
            if facet == "license":
                counts.update(models_repo.count_latest_by(ctx.db_url, "license", task=ws_task,
                                                          license=None, search=f["search"]))
            else:
                by_task = models_repo.count_latest_by(ctx.db_url, "task", task=ws_task,
                                                      license=f["license"], search=f["search"])
                if facet == "registry":
                    if sum(by_task.values()):
                        counts["workspace"] += sum(by_task.values())
                else:
                    counts.update(by_task)
        out[facet] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return out
