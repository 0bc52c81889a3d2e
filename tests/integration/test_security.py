"""A real ``fmhub serve`` on 127.0.0.1 under attack: DNS rebinding (a foreign ``Host``), cross-site
posts, UI posts without the CSRF token, a 300 MB body and a JSON body nested 10,000 deep."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from server_process import ServerProcess

pytestmark = pytest.mark.integration

EVIL = "http://evil.example"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("security") / "home"
    proc = ServerProcess(home, extra_args=("--allowed-host", "fmhub.test", "--max-upload-mb", "1")).start()
    try:
        yield proc
    finally:
        proc.stop()


def _rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1)) / 1024


class PeakRss:
    """Samples a process's resident memory every 20 ms while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self.before = _rss_mib(pid)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mib(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> "PeakRss":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, _rss_mib(self.pid))


@pytest.mark.parametrize("method,path", [("GET", "/api/v1/models"), ("POST", "/api/v1/data"), ("GET", "/ui/models"),
                                         ("GET", "/ui/data"), ("POST", "/endpoints/x/score"), ("GET", "/health")])
def test_a_foreign_host_is_refused_on_every_kind_of_route(server, method, path):
    body = {"inputs": ["hi"]} if "score" in path else {"name": "leak", "path": "/etc/passwd"}
    answer = httpx.request(method, server.url + path, headers={"Host": f"evil.example:{server.port}"},
                           json=body if method == "POST" else None, timeout=30)
    assert answer.status_code == 421, answer.text[:300]
    error = answer.json()["error"]
    assert error["code"] == "unknown_host" and "--allowed-host evil.example" in error["hint"]


def test_own_names_and_allowed_hosts_are_served(server):
    for host in ("127.0.0.1", f"localhost:{server.port}", "fmhub.test"):
        assert httpx.get(server.url + "/api/v1/models?limit=1", headers={"Host": host}, timeout=30).status_code == 200


def test_cross_origin_posts_are_403_and_change_nothing(server):
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        page = browser.get("/ui/endpoints")
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)
        form = browser.post("/ui/endpoints", data={"name": "evil1", "csrf_token": token},
                            headers={"Origin": EVIL, "HX-Request": "true"})
        assert form.status_code == 403, form.text[:300]
        rest = browser.post("/api/v1/endpoints", json={"name": "evil2"}, headers={"Origin": EVIL})
        assert rest.status_code == 403 and rest.json()["error"]["code"] == "forbidden"
        by_referer = browser.post("/api/v1/endpoints", json={"name": "evil3"}, headers={"Referer": EVIL + "/x"})
        assert by_referer.status_code == 403
    names = [e["name"] for e in httpx.get(server.url + "/api/v1/endpoints", timeout=30).json()["items"]]
    assert not {"evil1", "evil2", "evil3"} & set(names)


def test_ui_posts_need_the_csrf_token_and_cli_clients_need_none(server):
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/ui/endpoints").text).group(1)
        without = browser.post("/ui/endpoints", data={"name": "ui-ep"}, headers={"Origin": server.url})
        assert without.status_code == 403 and "CSRF token" in without.text
        made = browser.post("/ui/endpoints", data={"name": "ui-ep", "csrf_token": token},
                            headers={"Origin": server.url, "HX-Request": "true"})
        assert made.status_code < 400, made.text[:300]
    cli = httpx.post(server.url + "/api/v1/endpoints", json={"name": "cli-ep"}, timeout=30)  # no Origin, no cookie
    assert cli.status_code == 201, cli.text[:300]
    names = {e["name"] for e in httpx.get(server.url + "/api/v1/endpoints", timeout=30).json()["items"]}
    assert {"ui-ep", "cli-ep"} <= names


def _stream(total: int, chunk: int = MIB):
    sent = 0
    while sent < total:
        yield b" " * min(chunk, total - sent)
        sent += chunk


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
def test_a_300_mb_body_is_413_and_the_server_memory_stays_flat(server, declared):
    total = 300 * MIB
    headers = {"Content-Type": "application/json"}
    if declared:
        headers["Content-Length"] = str(total)
    with PeakRss(server.popen.pid) as rss:
        answer = httpx.post(server.url + "/api/v1/jobs/finetune", content=_stream(total), headers=headers,
                            timeout=120)
    print(f"\n300 MiB body ({'declared' if declared else 'chunked'}): server RSS {rss.before:.0f} -> peak "
          f"{rss.peak:.0f} MiB")
    assert answer.status_code == 413, answer.text[:300]
    assert answer.json()["error"]["code"] == "payload_too_large" and "--max-body-mb" in answer.json()["error"]["hint"]
    assert rss.peak - rss.before < 50, f"RSS grew from {rss.before:.0f} MiB to {rss.peak:.0f} MiB"
    assert httpx.get(server.url + "/health", timeout=30).status_code == 200


def test_uploads_have_their_own_limit_and_stream_to_disk(server):
    small = httpx.put(server.url + "/api/v1/data/small/upload?filename=small.csv",
                      content=b"text,label\ngood,pos\nbad,neg\n", timeout=60)
    assert small.status_code == 201, small.text[:300]
    big = httpx.put(server.url + "/api/v1/data/big/upload?filename=big.csv", content=_stream(3 * MIB, 64 * 1024),
                    timeout=60)
    assert big.status_code == 413 and "--max-upload-mb" in big.json()["error"]["hint"]
    leftovers = [p for p in server.home.rglob("big.csv")]
    assert leftovers == []


@pytest.mark.parametrize("path", ["/api/v1/jobs/finetune", "/api/v1/data/preview", "/endpoints/x/score"])
def test_json_nested_10000_deep_is_422_not_a_recursion_error(server, path):
    body = b'{"inputs": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    answer = httpx.post(server.url + path, content=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 422, answer.text[:300]
    assert "deeper than 32 levels" in answer.json()["error"]["message"]
    assert "RecursionError" not in server.log_path.read_text(errors="replace")


def test_a_never_ending_header_is_cut_off_and_the_memory_stays_flat(server):
    import socket

    sent = 0
    with PeakRss(server.popen.pid) as rss:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Filler: ")
            try:
                while sent < 100 * MIB:
                    sock.sendall(b"a" * MIB)
                    sent += MIB
            except OSError:  # the server closed the connection
                pass
    assert sent < 100 * MIB, "the server read a 100 MiB header"
    assert rss.peak - rss.before < 50, f"RSS grew from {rss.before:.0f} MiB to {rss.peak:.0f} MiB"
    assert httpx.get(server.url + "/health", timeout=30).status_code == 200


@pytest.mark.parametrize("host", ["localhost:80@evil.example", "[::1]evil.example"])
def test_a_malformed_host_that_starts_with_an_own_name_is_400(server, host):
    answer = httpx.get(server.url + "/api/v1/models?limit=1", headers={"Host": host}, timeout=30)
    assert answer.status_code == 400, answer.text[:300]
