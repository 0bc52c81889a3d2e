"""Deleting a deployment hands its traffic share to the deployments left, so the recorded split is
the one requests follow."""

from __future__ import annotations

import pytest

from fmhub.entities import Deployment
from fmhub.services import endpoints as endpoints_service
from fmhub.services.endpoints import rescaled
from fmhub.store import endpoints_repo


def _deploy(ctx, name: str, traffic: int) -> None:
    endpoints_repo.upsert_deployment(ctx.db_url, Deployment(endpoint="ep", name=name, model="m:1",
                                                            task="text-classification", traffic=traffic))


@pytest.mark.parametrize("before, deleted, after", [
    ({"blue": 50, "green": 50}, "green", {"blue": 100}),
    ({"a": 50, "b": 30, "c": 20}, "a", {"b": 60, "c": 40}),
    ({"a": 34, "b": 33, "c": 33}, "b", {"a": 51, "c": 49}),
    ({"blue": 100, "green": 0}, "green", {"blue": 100}),
    ({"blue": 0, "green": 100}, "green", {"blue": 0}),  # nothing to scale: the split says no traffic
])
def test_a_deleted_deployments_share_goes_to_the_others(ctx, before, deleted, after):
    endpoints_service.create_endpoint(ctx, "ep")
    for name, traffic in before.items():
        _deploy(ctx, name, traffic)
    changed = endpoints_service.delete_deployment(ctx, "ep", deleted)
    assert {d.name: d.traffic for d in changed.deployments} == after
    stored = endpoints_service.get_endpoint(ctx, "ep")
    assert {d.name: d.traffic for d in stored.deployments} == after


def test_rescaled_keeps_zeros_and_sums_to_100():
    out = rescaled({"a": 1, "b": 1, "c": 1, "z": 0})
    assert sum(out.values()) == 100 and out["z"] == 0 and sorted(out.values()) == [0, 33, 33, 34]
