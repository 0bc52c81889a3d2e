"""The UI's shared parts in-process: catalog page and facet counts, HTML errors on pages (JSON on
the API), sign-in on key-protected servers, and no file from outside the server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from local_client import local_client

from fmhub.api.app import create_app

UI = Path(__file__).resolve().parents[2] / "src" / "fmhub" / "ui"


@pytest.fixture()
def app_client(ctx):
    with local_client(create_app(ctx, serve_endpoints=False), raise_server_exceptions=False) as client:
        yield client


def test_home_is_the_catalog_with_counts_per_filter_value(app_client):
    home = app_client.get("/", follow_redirects=False)
    assert home.status_code == 302 and home.headers["location"] == "/ui/models"
    page = app_client.get("/ui/models?license=cc-by-4.0")
    assert page.status_code == 200
    assert re.findall(r'data-model="([^"]+)"', page.text) == ["opus-mt-en-de"]
    counts = dict(re.findall(r'data-facet-count="license=([^"]+)">(\d+)<', page.text))
    # license counts ignore the license filter itself: every license stays choosable
    assert counts["cc-by-4.0"] == "1" and int(counts["apache-2.0"]) >= 5 and counts["mit"] == "4"
    assert 'href="/api/v1/models?license=cc-by-4.0"' in page.text  # the JSON twin
    assert "<legend>Task (serves or fine-tunes)</legend>" in page.text
    assert 'id="sign-out"' not in page.text  # no API keys on this server: nothing to sign out of


def test_a_page_past_the_last_model_links_the_first_page(app_client):
    page = app_client.get("/ui/models?offset=999&license=mit")
    assert page.status_code == 200
    assert "No models on this page" in page.text and "No model matches" not in page.text
    assert re.search(r'<a href="/ui/models\?license=mit">Go to the first page</a>', page.text)
    assert "No models on this page" not in app_client.get("/ui/models?license=mit").text


def test_pages_have_an_icon_and_favicon_ico_redirects_to_it(app_client):
    page = app_client.get("/ui/models")
    assert '<link rel="icon" href="/static/ui/favicon.svg" type="image/svg+xml">' in page.text
    redirect = app_client.get("/favicon.ico", follow_redirects=False)
    assert redirect.status_code == 301 and redirect.headers["location"] == "/static/ui/favicon.svg"
    icon = app_client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")


def test_facets_count_other_filters_and_finetune_task_filters(app_client):
    facets = app_client.get("/api/v1/models/facets?finetune_task=translation").json()
    assert set(facets) == {"task", "finetune_task", "license", "registry"}
    assert facets["finetune_task"]["translation"] == 6 and facets["finetune_task"]["text-classification"] == 6
    assert sum(facets["registry"].values()) == 6  # registry counts apply the finetune_task filter
    listed = app_client.get("/api/v1/models?finetune_task=translation").json()
    assert listed["total"] == 6
    assert all("translation" in m["finetuning_tasks"] for m in listed["items"])
    bad = app_client.get("/api/v1/models/facets?finetune_task=juggling")
    assert bad.status_code == 422


def test_workspace_models_are_counted_in_the_facets(app_client, ctx, tiny_bert):
    from fmhub.services.models import import_model

    import_model(ctx, tiny_bert, "tiny", "text-classification", license="MIT")
    facets = app_client.get("/api/v1/models/facets").json()
    assert facets["registry"] == {"system": 21, "workspace": 1}
    assert facets["license"]["mit"] == 5
    only_ws = app_client.get("/api/v1/models/facets?registry=workspace").json()
    assert only_ws["task"] == {"text-classification": 1} and only_ws["license"] == {"mit": 1}


def test_pages_show_errors_as_html_and_the_api_as_json(app_client):
    page = app_client.get("/ui/models?task=juggling")
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "unknown task" in page.text and 'role="alert"' in page.text
    fragment = app_client.get("/ui/models?task=juggling", headers={"HX-Request": "true"})
    assert fragment.status_code == 422 and "<html" not in fragment.text and "unknown task" in fragment.text
    api = app_client.get("/api/v1/models?task=juggling")
    assert api.status_code == 422 and api.json()["error"]["code"] == "invalid_spec"
    missing = app_client.get("/ui/no-such-page")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")


def test_key_protected_server_asks_pages_to_sign_in_and_keeps_the_key_in_a_cookie(ctx):
    from fmhub.services.keys import create_key

    key = create_key(ctx, "ui")["key"]
    with local_client(create_app(ctx, require_api_key=True, serve_endpoints=False)) as client:
        first = client.get("/ui/models", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/ui/login?next=/ui/models"
        assert client.get("/api/v1/models").status_code == 401  # the API still answers 401
        wrong = client.post("/ui/login", data={"api_key": "nope", "next": "/ui/models"})
        assert wrong.status_code == 401 and "not valid" in wrong.text
        evil = client.post("/ui/login", data={"api_key": key, "next": "//evil.example/x"}, follow_redirects=False)
        assert evil.headers["location"] == "/ui/models"  # no open redirect
        cookie = evil.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert client.get("/favicon.ico", follow_redirects=False).status_code == 301  # no key needed
        signed_in = client.get("/ui/models")
        assert signed_in.status_code == 200
        assert re.search(r'<form class="signout" method="post" action="/ui/logout">', signed_in.text)
        assert client.get("/api/v1/models").status_code == 200  # the UI's own API calls
        out = client.post("/ui/logout", follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/ui/login"
        assert client.get("/ui/models", follow_redirects=False).status_code == 303  # signed out
        assert 'id="sign-out"' not in client.get("/ui/login").text


def test_templates_and_scripts_load_nothing_from_outside_the_server():
    for path in [*UI.joinpath("templates").rglob("*.html"), *UI.joinpath("static").glob("*.js")]:
        text = path.read_text(encoding="utf-8")
        external = re.findall(r'(?:src|href|action)\s*=\s*["\'](?:https?:)?//', text)
        assert external == [], f"{path.name} refers to another host"
    licenses = UI / "static" / "LICENSES.md"
    for vendored in (UI / "static" / "vendor").iterdir():
        assert (vendored / "LICENSE").is_file() and f"vendor/{vendored.name}/" in licenses.read_text()


@pytest.mark.parametrize("page", ["/ui/models", "/ui/models?task=translation&license=apache-2.0",
                                  "/ui/models/all-MiniLM-L6-v2",
                                  "/ui/models/all-MiniLM-L6-v2/finetune?task=text-classification",
                                  "/ui/jobs", "/ui/jobs?status=failed", "/ui/evaluate", "/ui/endpoints", "/ui/data"])
def test_every_page_links_a_json_twin_that_answers_json(app_client, page):
    html = app_client.get(page)
    assert html.status_code == 200, html.text[:500]
    twins = re.findall(r'<a id="json-twin" class="json-twin" href="([^"]+)"', html.text)
    assert len(twins) == 1, "one JSON link per page"
    twin = app_client.get(twins[0].replace("&amp;", "&"))
    assert twin.status_code == 200 and twin.headers["content-type"].startswith("application/json")
    assert twin.json()


def test_a_model_whose_files_are_missing_offers_no_finetune_and_says_why():
    from fmhub.catalog.cards import get_system_card
    from fmhub.ui.routes.models import card_actions

    card = get_system_card("bert-base-uncased").model_dump()
    here = card_actions({"card": {**card, "available_offline": True}, "served_tasks": []})
    assert here["finetune_tasks"] == ["text-classification", "token-classification", "question-answering"]
    away = card_actions({"card": {**card, "available_offline": False}, "served_tasks": []})
    assert away["finetune_tasks"] == [] and "not on this machine" in away["why_not_finetune"]


def test_an_error_put_at_its_field_is_not_listed_again_in_the_box(app_client):
    form = {"name": "dup-name", "description": ""}
    assert app_client.post("/ui/endpoints", data=form, headers={"HX-Request": "true"}).status_code == 204
    again = app_client.post("/ui/endpoints", data=form, headers={"HX-Request": "true"})
    assert again.status_code == 409, again.text
    message = re.search(r"<strong>([^<]+)</strong>", again.text).group(1)
    assert "dup-name" in message
    assert '<ul class="details">' not in again.text  # said once in the box, not listed again
    assert "&#34;field&#34;: &#34;name&#34;" in again.text  # app.js puts it next to the name field


def test_one_thread_is_not_threads(monkeypatch):
    import torch

    from fmhub.serving.runtimes import threads_text as _threads
    from fmhub.devices import choose_device

    assert _threads(1) == "1 thread" and _threads(4) == "4 threads"
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert choose_device("cpu").description == "cpu (1 thread, fp32)"
