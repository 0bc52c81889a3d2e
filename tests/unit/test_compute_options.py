"""The wizard's compute step: the Ray cluster is offered with its CPUs and GPUs when one answers at
FMHUB_RAY_ADDRESS, and otherwise shown disabled with the reason."""

from __future__ import annotations

import socket

import pytest

from fmhub.services import compute_options
from local_client import local_client


@pytest.fixture()
def ray_address_env(monkeypatch):
    from fmhub.config import get_settings

    def set_address(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv("FMHUB_RAY_ADDRESS", raising=False)
        else:
            monkeypatch.setenv("FMHUB_RAY_ADDRESS", value)
        get_settings.cache_clear()
        compute_options._cache.clear()

    yield set_address
    get_settings.cache_clear()
    compute_options._cache.clear()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_is_not_offered_without_an_address_and_says_how(ray_address_env):
    ray_address_env(None)
    local, ray = compute_options.compute_targets()
    assert local["value"] == "local" and local["available"] and "this machine" in local["detail"]
    assert ray["value"] == "ray" and not ray["available"]
    assert "FMHUB_RAY_ADDRESS" in ray["detail"]


def test_ray_is_not_offered_when_its_cluster_does_not_answer(ray_address_env):
    port = _closed_port()
    ray_address_env(f"127.0.0.1:{port}")
    ray = compute_options.compute_targets()[1]
    assert not ray["available"] and f"127.0.0.1:{port} does not answer" in ray["detail"]


def test_the_wizard_shows_why_ray_is_not_offered(ctx, tiny_bert, ray_address_env):
    from fmhub.api.app import create_app
    from fmhub.services.models import import_model

    ray_address_env(None)
    import_model(ctx, tiny_bert, "tiny", "text-classification")
    with local_client(create_app(ctx, serve_endpoints=False)) as client:
        page = client.get("/ui/models/tiny:1/finetune").text
    assert 'name="compute" value="ray" disabled' in page
    assert "not configured on this server: set FMHUB_RAY_ADDRESS" in page
    assert 'name="resources.num_workers"' in page


def test_the_form_sends_resources_only_for_a_ray_job():
    from fmhub.ui.finetune_form import finetune_spec_dict

    base = {"model": ["tiny:1"], "task": ["text-classification"], "data.train": ["reviews:1"],
            "resources.num_workers": ["2"], "resources.num_cpus": ["1"]}
    local, _ = finetune_spec_dict({**base, "compute": ["local"]})
    ray, _ = finetune_spec_dict({**base, "compute": ["ray"]})
    assert "resources" not in local
    assert ray["resources"] == {"num_workers": "2", "num_cpus": "1"}


def test_the_deploy_form_offers_the_ray_backend_only_with_a_cluster(ctx, ray_address_env):
    from fmhub.api.app import create_app

    ray_address_env(None)
    with local_client(create_app(ctx, serve_endpoints=False)) as client:
        page = client.get("/ui/endpoints?deploy=1").text
    assert '<option value="ray" disabled>' in page
    assert "Ray: not configured on this server: set FMHUB_RAY_ADDRESS" in page
    assert 'name="spec.min_replicas"' in page and 'name="spec.max_replicas"' in page


def test_a_deploy_form_with_replicas_for_the_local_backend_is_refused_naming_instances(ctx, tiny_bert, ray_address_env):
    from fmhub.api.app import create_app
    from fmhub.services.models import import_model

    ray_address_env(None)
    import_model(ctx, tiny_bert, "tiny", "text-classification")
    with local_client(create_app(ctx, serve_endpoints=False)) as client:
        answer = client.post("/ui/endpoints", data={"name": "reviews", "spec.model": "tiny:1", "spec.name": "blue",
                                                   "spec.backend": "local", "spec.min_replicas": "2"},
                             headers={"HX-Request": "true"})
    assert "min_replicas" in answer.text and "instances" in answer.text  # the spec's message, in the form
