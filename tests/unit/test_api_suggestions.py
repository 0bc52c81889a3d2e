"""The REST API names the nearest known key for an unknown one, and refuses unknown filter values
listing the known ones (the CLI's filters too)."""

from __future__ import annotations

import pytest
from local_client import local_client
from typer.testing import CliRunner

from fmhub.api.app import create_app


@pytest.fixture()
def api(ctx):
    with local_client(create_app(ctx), raise_server_exceptions=False) as client:
        yield client


def test_an_unknown_body_key_names_the_nearest_known_key(api):
    body = {"model": "m", "task": "text-classification", "data": {"train": "t.csv", "tset": "x.csv"},
            "hyperparameters": {"learning_rat": 0.001}}
    r = api.post("/api/v1/jobs/finetune", json=body)
    assert r.status_code == 422
    error = r.json()["error"]
    assert "unknown key 'learning_rat'; did you mean 'learning_rate'?" in error["message"]
    fields = {p["field"]: p["message"] for p in error["details"]}
    assert fields["hyperparameters.learning_rat"] == "unknown key 'learning_rat'; did you mean 'learning_rate'?"
    assert fields["data.tset"] == "unknown key 'tset'; did you mean 'test'?"
    # the routers' own request models too
    r = api.post("/api/v1/endpoints", json={"name": "e", "descripton": "d"})
    assert r.status_code == 422
    assert "unknown key 'descripton'; did you mean 'description'?" in r.json()["error"]["message"]


def test_an_unknown_key_with_nothing_near_lists_the_known_keys(api):
    r = api.post("/api/v1/endpoints", json={"name": "e", "zzzzzz": 1})
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert "unknown key 'zzzzzz'; known keys: " in message and "description" in message


def test_the_nearest_key_helper_walks_nested_models():
    from fmhub.services.specs import FinetuneSpec, fields_at, nearest_key

    assert "learning_rate" in fields_at(FinetuneSpec, ("hyperparameters",))
    assert "train" in fields_at(FinetuneSpec, ("data",))
    assert fields_at(FinetuneSpec, ("model",)) == [] and fields_at(None, ()) == []
    assert nearest_key("learning_rat", fields_at(FinetuneSpec, ("hyperparameters",))) == "learning_rate"
    assert nearest_key("qqqq", ["model", "task"]) is None


@pytest.mark.parametrize(("query", "field", "expected"), [
    ("task=text-clasification", "task", "text-classification"),
    ("finetune_task=translaton", "finetune_task", "translation"),
    ("license=apache", "license", "apache-2.0"),
])
def test_an_unknown_model_filter_value_is_a_422_listing_the_known_values(api, query, field, expected):
    r = api.get(f"/api/v1/models?{query}")
    assert r.status_code == 422
    error = r.json()["error"]
    assert f"did you mean '{expected}'?" in error["message"]
    detail = error["details"][0]
    assert detail["field"] == field and expected in detail["known"] and expected in error["hint"]
    assert api.get(f"/api/v1/models/facets?{query}").status_code == 422


def test_known_filter_values_still_filter(api):
    assert api.get("/api/v1/models?license=MIT").status_code == 200
    assert api.get("/api/v1/models?license=apache-2.0&task=text-classification").json()["total"] > 0


def test_an_unknown_job_status_lists_the_known_ones(api):
    r = api.get("/api/v1/jobs?status=runing")
    assert r.status_code == 422
    assert all(s in r.json()["error"]["message"] for s in ("queued", "running", "completed", "failed", "canceled"))


def test_the_cli_filters_list_the_known_values(ctx):
    from fmhub.cli.app import app

    result = CliRunner().invoke(app, ["models", "list", "--license", "apache"])
    assert result.exit_code == 1
    assert "did you mean 'apache-2.0'?" in result.output and "mit" in result.output
    result = CliRunner().invoke(app, ["jobs", "list", "--status", "runing"])
    assert result.exit_code == 1 and "completed" in result.output
