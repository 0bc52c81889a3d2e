"""Paged model listing (database-side filters) equals the full listing sliced, on awkward data."""

from __future__ import annotations

import itertools

from fmhub.entities import ModelVersion
from fmhub.services.models import list_models, page_models
from fmhub.store import models_repo


def _add(ctx, name, version, task, license=None, description="", architecture=None):
    lineage = {"architecture": architecture} if architecture else {}
    models_repo.add_version(ctx.db_url, ModelVersion(name=name, version=version, task=task, path=f"/nowhere/{name}",
                                                     license=license, description=description, lineage=lineage))


def test_pages_match_the_sliced_full_listing(ctx):
    _add(ctx, "alpha", 1, "translation", "MIT")
    _add(ctx, "alpha", 2, "text-classification", "mit", "a 100% tuned model")  # latest decides
    _add(ctx, "beta_x", 1, "text-classification", None, architecture="BertForSequenceClassification")
    _add(ctx, "gamma", 1, "summarization", "apache-2.0", "uses bert inside")
    _add(ctx, "delta", 1, "text-classification", "", "plain")
    for i in range(12):
        _add(ctx, f"bulk-{i:02d}", 1, "text-classification", "apache-2.0")
    filters = [dict(task=t, license=lic, search=s)
               for t, lic, s in itertools.product((None, "text-classification", "translation"),
                                                  (None, "mit", "unknown", "apache-2.0"),
                                                  (None, "bert", "100%", "_x", "BULK"))]
    for f in filters:
        full = [c.name for c in list_models(ctx, registry="workspace", **f)]
        for offset, limit in ((0, 5), (3, 4), (10, 50), (40, 5)):
            items, total = page_models(ctx, registry="workspace", limit=limit, offset=offset, **f)
            assert total == len(full), f
            assert [c.name for c in items] == full[offset:offset + limit], (f, offset, limit)
    items, _ = page_models(ctx, registry="workspace", task="text-classification", search="100%")
    assert [c.name for c in items] == ["alpha"]  # % is a literal, and the latest version's task counts
    assert page_models(ctx, registry="workspace", task="translation")[1] == 0
