"""Fixtures of the browser tests (tests/e2e): Debian's chromium driven by Playwright against a real ``fmhub serve`` on 127.0.0.1.

Every page a test opens records the host of each request it makes; the ``page`` fixture fails the
test when one went anywhere but the server, and saves a screenshot of the final page under
``$FMHUB_TEST_OUTPUT/screenshots`` (default ``test-output/`` in the repository).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import build_tiny_bert, write_sentiment_csv
from server_process import running_server

CHROMIUM = os.environ.get("FMHUB_CHROMIUM", "/usr/bin/chromium")
OUTPUT = Path(os.environ.get("FMHUB_TEST_OUTPUT", Path(__file__).resolve().parents[1] / "test-output"))
LAUNCH_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-default-apps", "--no-first-run", "--disable-domain-reliability",
               "--disable-client-side-phishing-detection", "--disable-features=Translate,OptimizationHints,MediaRouter"]
TIMEOUT_MS = 30_000


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def browser():
    """A headless chromium (Debian's ``/usr/bin/chromium``, installed by ``.ci/run``)."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).is_file():
        pytest.fail(f"no chromium at {CHROMIUM}: install it with `apt-get install chromium` "
                    "(or set FMHUB_CHROMIUM to its path)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory):
    """A real ``fmhub serve`` with the workspace model ``tiny-bert`` (text classification, random
    weights) imported, and a sentiment CSV to upload.

    Yields:
        ``(server, train_csv)``.
    """
    import fmhub

    root = tmp_path_factory.mktemp("ui")
    tiny = build_tiny_bert(root / "tiny")
    train = write_sentiment_csv(root / "reviews.csv", n=80)
    with running_server(root / "home") as server:
        client = fmhub.Client(url=server.url)
        job = client.models.import_(tiny, name="tiny-bert", task="text-classification")
        done = client.jobs.wait(job.id, timeout_s=120, poll_s=0.3)
        assert done.status.value == "completed", done.error
        client.close()
        yield server, train


@pytest.fixture
def page(browser, ui_server, request):
    """A fresh browser page on the server; checks every request's host and saves a screenshot.

    Also records the console's errors (``page.console_errors``) and the paths of the POST, PUT and
    DELETE requests sent (``page.posts``), for tests to check.
    """
    server, _ = ui_server
    context = browser.new_context(base_url=server.url, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    expected = urlsplit(server.url).netloc
    hosts: list[str] = []
    pg.on("request", lambda r: hosts.append(urlsplit(r.url).netloc or r.url.split(":", 1)[0]))
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.outside_hosts = lambda: sorted({h for h in hosts if h not in (expected, "data", "blob")})
    pg.js_errors = errors
    console_errors: list[str] = []  # for tests to check; a 4xx a test provokes on purpose is logged too
    pg.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    pg.console_errors = console_errors
    posts: list[str] = []  # paths of the state-changing requests (POST, PUT, DELETE) the page sent
    pg.on("request", lambda r: posts.append(urlsplit(r.url).path) if r.method in ("POST", "PUT", "DELETE") else None)
    pg.posts = posts
    yield pg
    OUTPUT.joinpath("screenshots").mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    try:
        pg.screenshot(path=str(OUTPUT / "screenshots" / f"{name}.png"), full_page=True)
    finally:
        context.close()
    assert pg.outside_hosts() == [], f"requests left the server: {pg.outside_hosts()}"
    assert errors == [], f"JavaScript errors on the page: {errors}"
