"""The server's Host check, same-origin/CSRF guard and body limits, on a small app and on the real one."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from fmhub.api.limits import BodyLimitMiddleware, RequestLimits, json_too_deep
from fmhub.api.security import (CsrfTokens, HostCheckMiddleware, SameOriginMiddleware, SecurityOptions,
                                split_host)
from local_client import local_client

EVIL = "http://evil.example"


def _guarded(limits: RequestLimits | None = None, security: SecurityOptions | None = None) -> tuple[FastAPI, list]:
    """A small app behind the guards (in create_app's order); ``seen`` records the bodies it read."""
    app = FastAPI()
    seen: list = []

    @app.post("/ui/thing")
    async def ui_thing(request: Request) -> dict:
        body = await request.body()
        seen.append(body)
        return {"form": body.decode()}

    @app.post("/api/v1/thing")
    async def api_thing(payload: dict) -> dict:
        seen.append(payload)
        return {"ok": True}

    @app.put("/api/v1/data/{name}/upload")
    async def upload(name: str, request: Request) -> dict:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        seen.append(size)
        return {"size": size}

    @app.get("/ui/page")
    def page(request: Request) -> dict:
        return {"token": request.state.csrf_token}

    security = security or SecurityOptions()
    app.state.csrf = CsrfTokens(security.csrf_secret)
    app.add_middleware(SameOriginMiddleware, tokens=app.state.csrf)
    app.add_middleware(BodyLimitMiddleware, limits=limits or RequestLimits())
    app.add_middleware(HostCheckMiddleware, options=security)
    return app, seen


def test_split_host_reads_names_ports_and_ipv6():
    assert split_host("LocalHost:8000") == ("localhost", 8000)
    assert split_host("[::1]:9") == ("::1", 9)
    assert split_host("::1") == ("::1", None)
    assert split_host("example.org.") == ("example.org", None)


def test_a_foreign_host_is_421_with_a_hint_naming_the_flag():
    app, _ = _guarded()
    with TestClient(app) as client:  # TestClient's own host name, "testserver", is no name of the server
        refused = client.post("/api/v1/thing", json={})
        assert refused.status_code == 421
        error = refused.json()["error"]
        assert error["code"] == "unknown_host" and "--allowed-host testserver" in error["hint"]
        for host in ("evil.example", "localhost.evil.example", "127.0.0.1.nip.io"):
            assert client.get("/ui/page", headers={"host": host}).status_code == 421, host
        assert client.get("/ui/page", headers={"host": ""}).status_code == 400
        for host in ("localhost", "localhost:8000", "127.0.0.1:1", "[::1]:8000"):
            assert client.get("/ui/page", headers={"host": host}).status_code == 200, host


def test_allowed_hosts_and_the_bound_address_are_accepted():
    app, _ = _guarded(security=SecurityOptions(bound_host="10.1.2.3", allowed_hosts=("fmhub.lan:8000",)))
    with TestClient(app) as client:
        for host in ("fmhub.lan", "FMHUB.lan:8000", "10.1.2.3:8000"):
            assert client.get("/ui/page", headers={"host": host}).status_code == 200, host
        assert client.get("/ui/page", headers={"host": "other.lan"}).status_code == 421
    app, _ = _guarded(security=SecurityOptions(allowed_hosts=("*",)))
    with TestClient(app) as client:
        assert client.get("/ui/page").status_code == 200


@pytest.mark.parametrize("headers", [{"origin": EVIL}, {"origin": "null"}, {"origin": "http://localhost:9999"},
                                     {"referer": EVIL + "/page"}, {"sec-fetch-site": "cross-site"},
                                     {"sec-fetch-site": "same-site", "origin": "http://localhost"}])
def test_cross_site_state_changes_are_403_with_and_without_a_token(headers):
    app, seen = _guarded()
    with local_client(app) as client:
        for path in ("/api/v1/thing", "/ui/thing"):
            refused = client.post(path, json={}, headers=headers)
            assert refused.status_code == 403, (path, headers)
            assert "another site" in refused.text
    assert seen == []


def test_same_origin_and_cookie_less_clients_pass():
    app, seen = _guarded()
    with TestClient(app, base_url="http://localhost") as client:
        assert client.post("/api/v1/thing", json={"a": 1}).status_code == 200  # CLI, curl: no Origin, no cookie
        assert client.post("/api/v1/thing", json={"a": 2}, headers={"origin": "http://localhost"}).status_code == 200
        assert client.post("/api/v1/thing", json={"a": 3},
                           headers={"referer": "http://localhost/ui/x", "sec-fetch-site": "same-origin"}).status_code == 200
    assert seen == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_ui_posts_need_the_pages_csrf_token():
    app, seen = _guarded()
    with TestClient(app, base_url="http://localhost") as client:
        first = client.get("/ui/page")
        assert "fmhub_csrf=" in first.headers["set-cookie"] and "SameSite=Strict" in first.headers["set-cookie"]
        token = first.json()["token"]
        missing = client.post("/ui/thing", data={"name": "x"})
        assert missing.status_code == 403 and "CSRF token" in missing.text
        wrong = client.post("/ui/thing", data={"name": "x", "csrf_token": "forged"})
        assert wrong.status_code == 403
        as_field = client.post("/ui/thing", data={"name": "x", "csrf_token": token})
        assert as_field.status_code == 200 and as_field.json()["form"] == f"name=x&csrf_token={token}"
        as_header = client.post("/ui/thing", data={"name": "y"}, headers={"x-csrf-token": token})
        assert as_header.status_code == 200
        assert client.get("/ui/page").json()["token"] == token  # the same session keeps its token
    with TestClient(app, base_url="http://localhost") as other:  # another browser: the token is not its own
        other.get("/ui/page")
        assert other.post("/ui/thing", data={"csrf_token": token}).status_code == 403
    assert seen == [f"name=x&csrf_token={token}".encode(), b"name=y"]


def test_the_ui_key_cookie_cannot_post_to_the_api_without_the_token():
    app, _ = _guarded()
    with TestClient(app, base_url="http://localhost") as client:
        client.cookies.set("fmhub_api_key", "k")
        assert client.post("/api/v1/thing", json={}).status_code == 403
        assert client.post("/api/v1/thing", json={}, headers={"authorization": "Bearer k"}).status_code == 200
    with local_client(app) as client:
        client.cookies.set("fmhub_api_key", "k")
        assert client.post("/api/v1/thing", json={}).status_code == 200  # the UI's fetch sends the token


def test_bodies_over_the_limit_are_413_before_the_app_reads_them():
    app, seen = _guarded(limits=RequestLimits(max_body_bytes=1000, max_upload_bytes=5000))
    with local_client(app) as client:
        declared = client.post("/api/v1/thing", content=b"{" + b" " * 2000 + b"}",
                               headers={"content-type": "application/json"})
        assert declared.status_code == 413
        error = declared.json()["error"]
        assert "2002 bytes" in error["message"] and "1000 bytes" in error["message"]
        assert "--max-body-mb" in error["hint"]

        def chunks():
            for _ in range(10):
                yield b"x" * 300

        streamed = client.post("/ui/thing", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
        assert streamed.status_code == 413
        streamed_json = client.post("/api/v1/thing", content=chunks(), headers={"content-type": "application/json"})
        assert streamed_json.status_code == 413
        assert client.put("/api/v1/data/a/upload", content=b"x" * 4000).json() == {"size": 4000}
        too_big = client.put("/api/v1/data/a/upload", content=b"x" * 6000)
        assert too_big.status_code == 413 and "--max-upload-mb" in too_big.json()["error"]["hint"]
        streamed_upload = client.put("/api/v1/data/a/upload", content=(b"x" * 1000 for _ in range(6)))
        assert streamed_upload.status_code == 413
        bad_length = client.post("/api/v1/thing", content=b"{}", headers={"content-length": "lots"})
        assert bad_length.status_code == 400
    assert seen == [4000]


def test_json_nested_too_deep_is_422_naming_the_limit():
    app, seen = _guarded()
    with local_client(app) as client:
        deep = client.post("/api/v1/thing", content=b"[" * 10_000 + b"]" * 10_000,
                           headers={"content-type": "application/json"})
        assert deep.status_code == 422
        assert "deeper than 32 levels" in deep.json()["error"]["message"]
        untyped = client.post("/api/v1/thing", content=b'{"a":' * 40 + b"1" + b"}" * 40)  # read as JSON too
        assert untyped.status_code == 422
        brackets_in_text = {"a": "[" * 100 + "{" * 100}
        assert client.post("/api/v1/thing", json=brackets_in_text).status_code == 200
    assert seen == [brackets_in_text]


def test_json_too_deep_counts_structure_not_strings():
    assert not json_too_deep(b'{"a": [[1, 2], {"b": "[[[[["}]}', 3)
    assert json_too_deep(b'{"a": [[1, 2], {"b": [[]]}]}', 3)
    assert not json_too_deep(b'["\\"[[[[", 1]', 1)
    assert json_too_deep(b"[" * 5, 4)


def test_the_real_app_guards_ui_forms_and_renders_the_token(ctx):
    from fmhub.api.app import create_app

    app = create_app(ctx, serve_endpoints=False)
    with TestClient(app, base_url="http://localhost") as browser:
        page = browser.get("/ui/endpoints")
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)
        assert f'"X-CSRF-Token": "{token}"' in page.text
        assert f'name="csrf_token" value="{token}"' in page.text  # the create forms carry it
        forged = browser.post("/ui/endpoints", data={"name": "ep1"}, headers={"origin": EVIL})
        assert forged.status_code == 403 and forged.headers["content-type"].startswith("text/html")
        no_token = browser.post("/ui/endpoints", data={"name": "ep1"})
        assert no_token.status_code == 403
        created = browser.post("/ui/endpoints", data={"name": "ep1", "csrf_token": token},
                               headers={"origin": "http://localhost"})
        assert created.status_code < 400, created.text[:300]
        assert browser.get("/api/v1/endpoints").json()["items"][0]["name"] == "ep1"
        for route in ("/api/v1/models", "/api/v1/jobs", "/api/v1/data"):
            too_many = browser.get(route, params={"limit": 5000})
            assert too_many.status_code == 422 and "1000" in too_many.json()["error"]["message"], route
    with TestClient(app) as foreign:
        assert foreign.get("/health").status_code == 421
