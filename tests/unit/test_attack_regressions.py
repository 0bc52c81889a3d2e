"""Requests that once got past the server's guards (or crashed it): each test is one attack that must
stay refused."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from fmhub.api.limits import BodyLimitMiddleware, RequestLimits, json_too_deep
from fmhub.api.security import CsrfTokens, HostCheckMiddleware, SameOriginMiddleware, SecurityOptions
from fmhub.errors import ForbiddenPathError
from fmhub.services.data_roots import DataRoots, resolve_path


def _guarded() -> FastAPI:
    """A small app behind the guards, in create_app's order."""
    app = FastAPI()

    @app.get("/page")
    def page() -> dict:
        return {"ok": True}

    @app.post("/api/v1/thing")
    async def thing(request: Request) -> dict:
        return {"body": (await request.body()).decode("utf-8", "replace")}

    security = SecurityOptions()
    app.add_middleware(SameOriginMiddleware, tokens=CsrfTokens(security.csrf_secret))
    app.add_middleware(BodyLimitMiddleware, limits=RequestLimits())
    app.add_middleware(HostCheckMiddleware, options=security)
    return app


@pytest.mark.parametrize("host", ["localhost:80@evil.example", "[::1]evil.example", "localhost@evil.example",
                                  "localhost:8000:evil", "localhost/evil", "[localhost]x"])
def test_a_malformed_host_is_400_even_when_it_starts_with_an_own_name(host):
    with TestClient(_guarded(), base_url="http://localhost") as client:
        answer = client.get("/page", headers={"host": host})
    assert answer.status_code == 400, host
    assert answer.json()["error"]["code"] == "invalid_request" and "Host" in answer.json()["error"]["message"]


def test_two_host_headers_are_400_whichever_comes_first():
    with TestClient(_guarded(), base_url="http://localhost") as client:
        for hosts in (("localhost", "evil.example"), ("evil.example", "localhost")):
            request = client.build_request("GET", "/page")
            request.headers = request.headers.copy()
            del request.headers["host"]
            raw = [(b"host", h.encode()) for h in hosts]
            request.headers = type(request.headers)(raw + list(request.headers.raw))
            assert client.send(request).status_code == 400, hosts
        for host in ("localhost", "LOCALHOST.", "[::1]:8000", "127.0.0.1:"):  # still the server's names
            assert client.get("/page", headers={"host": host}).status_code == 200, host


def test_an_origin_with_user_info_is_not_the_servers_origin():
    with TestClient(_guarded(), base_url="http://localhost") as client:
        answer = client.post("/api/v1/thing", content=b"{}", headers={"host": "localhost",
                                                                       "origin": "http://evil.example@localhost",
                                                                       "content-type": "application/json"})
        assert answer.status_code == 403
        same = client.post("/api/v1/thing", content=b"{}", headers={"host": "localhost", "origin": "http://localhost",
                                                                     "content-type": "application/json"})
        assert same.status_code == 200


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32-le"])
def test_json_nesting_is_counted_in_utf16_and_utf32_bodies(encoding):
    # U+2200 is the bytes 22 00 in UTF-16-LE: read byte by byte, a '"' that hid the brackets after it
    text = '{"x": "\u2200", "deep": ' + "[" * 500 + "]" * 500 + ', "y": "z"}'
    assert json_too_deep(text.encode(encoding), 32)
    assert not json_too_deep('{"x": "\u2200", "flat": [[1]], "y": "z"}'.encode(encoding), 32)
    with TestClient(_guarded(), base_url="http://localhost") as client:
        answer = client.post("/api/v1/thing", content=text.encode(encoding),
                             headers={"content-type": "application/json"})
    assert answer.status_code == 422 and "deeper than 32" in answer.json()["error"]["message"]


@pytest.mark.parametrize("value", ["data/a\0b.csv", "~no-such-user-fmhub/x.csv"])
def test_paths_that_cannot_be_resolved_are_refused_not_a_crash(tmp_path, value):
    roots = DataRoots.of([tmp_path])
    assert resolve_path(value) is None
    assert not roots.contains(value)
    with pytest.raises(ForbiddenPathError) as raised:
        roots.check({"data.train": value}, "data file")
    assert raised.value.details[0]["field"] == "data.train"


def test_a_path_naming_an_unknown_users_home_or_a_nul_byte_is_403_not_500(ctx):
    from fmhub.api.app import create_app
    from local_client import local_client

    spec = {"model": "all-MiniLM-L6-v2", "task": "text-classification", "data": {"train": "~no-such-user-fmhub/x.csv"}}
    with local_client(create_app(ctx, serve_endpoints=False), raise_server_exceptions=False) as client:
        for path, payload in (("/api/v1/jobs/finetune", spec),
                              ("/api/v1/data", {"name": "x", "path": "~no-such-user-fmhub/x.csv"}),
                              ("/api/v1/data", {"name": "x", "path": "a\0b.csv"}),
                              ("/api/v1/models/import", {"path": "a\0b", "name": "m", "task": "text-classification"})):
            answer = client.post(path, json=payload)
            assert answer.status_code == 403, (path, answer.text[:300])
            assert answer.json()["error"]["code"] == "forbidden_path"


@pytest.mark.parametrize("url", ["/api/v1/jobs?offset=99999999999999999999999", "/api/v1/jobs?offset=9223372036854775808",
                                 "/api/v1/models?offset=99999999999999999999999",
                                 "/api/v1/data?offset=99999999999999999999999",
                                 "/api/v1/jobs/abc/events?after=99999999999999999999999",
                                 "/api/v1/jobs/abc/logs?offset=99999999999999999999999",
                                 "/ui/jobs?offset=99999999999999999999999", "/ui/models?offset=99999999999999999999999",
                                 "/ui/data?offset=99999999999999999999999"])
def test_an_offset_past_64_bits_is_422_not_a_database_overflow(ctx, url):
    from fmhub.api.app import create_app
    from local_client import local_client

    with local_client(create_app(ctx, serve_endpoints=False), raise_server_exceptions=False) as client:
        answer = client.get(url)
    assert answer.status_code == 422, answer.text[:300]


def test_a_model_folder_holding_a_link_out_of_the_roots_is_not_imported(ctx, tiny_bert, tmp_path):
    # once imported, the linked file sat in the artifact store (a root) and the data API read it back
    import shutil
    from dataclasses import replace

    from fmhub.services.job_exec import submit_import

    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"leak": "secret"}')
    folder = root / "model"
    shutil.copytree(tiny_bert, folder)
    server = replace(ctx, data_roots=DataRoots.of([root], excluded=[root / "model" / "state"]))
    (folder / "extra.json").symlink_to(outside / "secret.json")
    with pytest.raises(ForbiddenPathError) as info:
        submit_import(server, str(folder), "evil", "text-classification")
    assert [d["field"] for d in info.value.details] == ["path/extra.json"]
    assert "model folder file" in info.value.message
    (folder / "extra.json").unlink()
    (folder / "more").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ForbiddenPathError) as info:
        submit_import(server, str(folder), "evil", "text-classification")
    assert [d["field"] for d in info.value.details] == ["path/more"]
    (folder / "more").unlink()
    (folder / "state").mkdir()  # the server's own state (FMHUB_HOME) inside the folder
    (folder / "state" / "fmhub.db").write_text("keys")
    with pytest.raises(ForbiddenPathError) as info:
        submit_import(server, str(folder), "evil", "text-classification")
    assert [d["field"] for d in info.value.details] == ["path/state", "path/state/fmhub.db"]
    shutil.rmtree(folder / "state")
    (folder / "inside.json").symlink_to(folder / "config.json")  # a link that stays under the roots is fine
    assert submit_import(server, str(folder), "ok", "text-classification").kind == "import"


def test_no_other_site_may_frame_the_ui(ctx):
    from fmhub.api.app import create_app
    from local_client import local_client

    with local_client(create_app(ctx, serve_endpoints=False), raise_server_exceptions=False) as client:
        for path in ("/ui/endpoints", "/api/v1/models?limit=1", "/no-such-page"):
            answer = client.get(path)
            assert answer.headers["x-frame-options"] == "DENY", path
            assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"
            assert answer.headers["x-content-type-options"] == "nosniff"
        refused = client.get("/ui/endpoints", headers={"host": "evil.example"})
        assert refused.status_code == 421 and refused.headers["x-frame-options"] == "DENY"


def test_an_empty_authorization_header_does_not_excuse_the_key_cookie_from_the_token(ctx):
    from fmhub.api.app import create_app
    from fmhub.services.keys import create_key

    key = create_key(ctx, "ui")["key"]
    app = create_app(ctx, require_api_key=True, serve_endpoints=False)
    with TestClient(app, base_url="http://localhost") as client:
        client.cookies.set("fmhub_api_key", key)  # signed in to the UI: the key authenticates by cookie
        for raw in ([(b"authorization", b"")], [(b"authorization", b"Bearer x"), (b"authorization", b"")]):
            request = client.build_request("POST", "/api/v1/endpoints", json={"name": "csrf-ep"})
            request.headers = type(request.headers)(list(request.headers.raw) + raw)
            answer = client.send(request)
            assert answer.status_code == 403, answer.text[:300]
        answer = client.post("/api/v1/endpoints", json={"name": "key-ep"}, headers={"authorization": f"Bearer {key}"})
        assert answer.status_code == 201, answer.text[:300]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_scoring_bodies_are_checked_for_nesting_whatever_their_content_type(content_type):
    app = FastAPI()
    seen: list = []

    @app.post("/endpoints/{name}/score")
    async def score(name: str, request: Request) -> dict:
        seen.append(await request.body())
        return {}

    app.add_middleware(BodyLimitMiddleware, limits=RequestLimits())
    body = b'{"inputs": ' + b"[" * 100 + b"]" * 100 + b"}"
    with TestClient(app) as client:
        answer = client.post("/endpoints/x/score", content=body, headers={"content-type": content_type})
        assert answer.status_code == 422 and "deeper than 32" in answer.json()["error"]["message"]
        assert client.post("/endpoints/x/score", content=b'{"inputs": ["a"]}',
                           headers={"content-type": content_type}).status_code == 200
    assert seen == [b'{"inputs": ["a"]}']


@pytest.mark.parametrize("encoding", ["zlib_codec", "rot13", "hex_codec", "base64", "punycode"])
def test_an_encoding_that_is_no_text_codec_is_a_data_error_not_a_crash(tmp_path, encoding):
    from fmhub.data.encodings import read_text
    from fmhub.errors import DataError

    path = tmp_path / "d.csv"
    path.write_text("text,label\ngood,pos\n")
    with pytest.raises(DataError) as info:
        read_text(path, encoding)
    assert encoding in info.value.message and "utf-8" in info.value.hint


def test_a_path_too_long_for_the_file_system_or_a_nul_encoding_is_a_4xx(ctx):
    from fmhub.api.app import create_app
    from local_client import local_client

    long = "a" * 5000
    spec = {"model": "all-MiniLM-L6-v2", "task": "text-classification", "data": {"train": long}}
    with local_client(create_app(ctx, serve_endpoints=False), raise_server_exceptions=False) as client:
        for path, payload in (("/api/v1/jobs/finetune", spec),
                              ("/api/v1/jobs/evaluate", {"model": "all-MiniLM-L6-v2", "task": "text-classification",
                                                         "data": {"test": long}}),
                              ("/api/v1/data", {"name": "x", "path": long}),
                              ("/api/v1/data", {"name": "x", "path": "a/" * 3000}),
                              ("/api/v1/models/import", {"path": "a/" * 3000, "name": "m", "task": "text-classification"}),
                              ("/api/v1/models/import", {"path": long, "name": "m", "task": "text-classification"})):
            answer = client.post(path, json=payload)
            assert answer.status_code == 403, (path, answer.text[:300])
    assert resolve_path("a" * 5000) is None and resolve_path("a/" * 3000) is None


def test_an_encoding_name_holding_a_nul_is_a_data_error(tmp_path):
    from fmhub.data.encodings import read_text
    from fmhub.errors import DataError

    path = tmp_path / "d.csv"
    path.write_text("text,label\n")
    with pytest.raises(DataError, match="unknown encoding"):
        read_text(path, "utf\0-8")


_QUADRATIC_INPUTS = """
from fmhub.api.auth import cookie_value
from fmhub.api.limits import json_too_deep
body = b'"' + b'\\\\"' * 400_000 + b'[' * 40
assert json_too_deep(body, 32) is False  # one unterminated string: no brackets outside it
assert cookie_value({b"cookie": b'fmhub_csrf="' + b'\\\\' * 400_000}, "fmhub_csrf") == ""
"""


def test_unterminated_strings_and_escaped_cookies_are_read_in_linear_time():
    """A body of one unterminated string full of escaped quotes, and a cookie full of backslashes,
    once took time quadratic in their size (minutes for 800 KB) before any key was checked."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _QUADRATIC_INPUTS], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("header", "value"), [
    (b"a=1; fmhub_api_key=abc-DEF_1; x=y", "abc-DEF_1"),
    (b'fmhub_api_key="abc"', "abc"),
    (b"fmhub_api_key_2=z", ""),
    (b"fmhub_api_key", ""),
    (b'fmhub_api_key="a\\"b"', ""),
    (b"fmhub_api_key=" + b"k" * 2000, ""),
])
def test_cookie_values_are_read_without_unescaping(header, value):
    from fmhub.api.auth import cookie_value

    assert cookie_value({b"cookie": header}, "fmhub_api_key") == value


def test_a_scoring_body_over_its_own_limit_is_413_naming_that_limit():
    from fmhub.services.serving import MAX_BODY_BYTES

    app = _guarded()

    @app.post("/endpoints/ep/score")
    async def score(request: Request) -> dict:
        return {"n": len(await request.body())}

    with TestClient(app, base_url="http://localhost") as client:
        answer = client.post("/endpoints/ep/score", content=b"[" + b" " * (2 * MAX_BODY_BYTES) + b"]",
                             headers={"content-type": "application/json"})
        huge = client.post("/endpoints/ep/score", content=b"{}",
                           headers={"content-type": "application/json", "content-length": "99999999999999999999"})
    error = answer.json()["error"]
    assert answer.status_code == 413 and "at most 1 MiB" in error["message"]
    assert "fewer or shorter inputs" in error["hint"] and "--max-body-mb" not in error["hint"]
    assert huge.status_code == 413 and "95,367,431,640,625 MiB" in huge.json()["error"]["message"]


@pytest.mark.parametrize(("value", "expected", "cut"), [
    ("short", "short", False),
    ("x" * 5000, "x" * 640, True),
    (["a" * 700, "b"], ["a" * 640, "b"], True),
    (["fine", "words"], ["fine", "words"], False),
    ({"question": "q" * 700, "context": "c" * 5000}, {"question": "q" * 640, "context": "c" * 5000}, True),
    (42, 42, False),
])
def test_texts_are_cut_to_what_the_model_can_see_before_tokenizing(value, expected, cut):
    from fmhub.tasks.clipping import clip_input

    assert clip_input(value, 10) == (expected, cut)  # 10 tokens x 64 characters
