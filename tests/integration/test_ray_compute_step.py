"""The wizard's compute step against the test Ray head: Ray is offered with the cluster's CPUs."""

from __future__ import annotations

import pytest

from local_client import local_client

pytestmark = [pytest.mark.integration, pytest.mark.ray]


def test_the_wizard_offers_the_ray_cluster_with_its_resources(ctx, tiny_bert, ray_env):
    from fmhub import raycluster
    from fmhub.api.app import create_app
    from fmhub.services import compute_options
    from fmhub.services.models import import_model

    compute_options._cache.clear()
    try:
        ray = compute_options.compute_targets()[1]
        assert ray["available"], ray["detail"]
        assert ray["cpus"] >= 1 and ray["nodes"] >= 1
        assert ray["detail"].startswith(f"Ray cluster {ray_env}: ")
        import_model(ctx, tiny_bert, "tiny", "text-classification")
        with local_client(create_app(ctx, serve_endpoints=False)) as client:
            page = client.get("/ui/models/tiny:1/finetune").text
        assert 'name="compute" value="ray" aria-describedby' in page  # enabled
        assert f"Ray cluster {ray_env}: " in page
        with local_client(create_app(ctx, serve_endpoints=False)) as client:
            deploy = client.get("/ui/endpoints?deploy=1").text
        assert '<option value="ray">' in deploy and f"Ray: Ray cluster {ray_env}: " in deploy
    finally:
        compute_options._cache.clear()
        raycluster.disconnect()
