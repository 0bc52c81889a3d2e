"""The Ray connection fails fast and clearly: no address, a malformed one, a port nobody answers."""

from __future__ import annotations

import socket
import time

import pytest

from fmhub import raycluster
from fmhub.errors import ComputeUnavailableError


def test_no_address_configured_names_the_setting(monkeypatch):
    from fmhub.config import get_settings

    monkeypatch.delenv("FMHUB_RAY_ADDRESS", raising=False)
    get_settings.cache_clear()
    with pytest.raises(ComputeUnavailableError) as err:
        raycluster.connect()
    assert "FMHUB_RAY_ADDRESS" in err.value.message and "ray start --head" in err.value.hint
    assert err.value.http_status == 503


def test_malformed_address_is_refused():
    with pytest.raises(ComputeUnavailableError, match="not HOST:PORT"):
        raycluster.connect("nonsense")


def test_a_port_nobody_listens_on_fails_in_seconds_not_minutes():
    with socket.socket() as s:  # a free port, closed again: nobody listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(ComputeUnavailableError, match=f"127.0.0.1:{port} does not answer"):
        raycluster.connect(f"127.0.0.1:{port}")
    assert time.monotonic() - t0 < 10


def test_a_head_that_stops_answering_drops_the_connection_before_ray_ends_the_process(monkeypatch):
    """Ray terminates a driver whose head is away for 60 s: the watch drops the connection first and
    says why."""
    calls = []
    monkeypatch.setattr(raycluster, "WATCH_EVERY_S", 0.01)
    monkeypatch.setattr(raycluster, "LOST_AFTER_S", 0.05)
    monkeypatch.setattr(raycluster, "probe", lambda address, timeout_s=1.0: "ConnectionRefusedError: refused")
    monkeypatch.setattr(raycluster, "_CONNECTED", "127.0.0.1:1")

    def fake_disconnect():
        calls.append("disconnect")
        monkeypatch.setattr(raycluster, "_CONNECTED", None)

    monkeypatch.setattr(raycluster, "disconnect", fake_disconnect)
    t0 = time.monotonic()
    raycluster._watch("127.0.0.1:1")
    assert calls == ["disconnect"] and time.monotonic() - t0 < 5
    assert "127.0.0.1:1 does not answer any more (ConnectionRefusedError" in raycluster.lost_reason()
    monkeypatch.setattr(raycluster, "_LOST", None)


def test_resources_are_checked_as_ray_would_before_a_job_is_queued():
    from pydantic import ValidationError

    from fmhub.services.compute_spec import ComputeResources

    for bad, words in [({"custom": {"foo": -1}}, "must be > 0"), ({"custom": {"CPU": 1}}, "Ray's own resource"),
                       ({"custom": {"node:127.0.0.1": 1}}, "Ray's own resource"),
                       ({"num_cpus": 1e-300}, "multiple of 0.0001"), ({"custom": {"foo": float("nan")}}, "finite"),
                       ({"custom": {f"r{i}": 1 for i in range(17)}}, "at most 16"),
                       ({"custom": {"bad name!": 1}}, "is not a name")]:
        with pytest.raises(ValidationError, match=words):
            ComputeResources(**bad)
    assert ComputeResources(num_cpus=0.5, custom={"special_node": 0.25}).custom == {"special_node": 0.25}
