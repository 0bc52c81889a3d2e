"""The deployment spec's serving backends and replica bounds, their record, and the ``ray`` backend's
pieces that need no cluster."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fmhub.entities import Deployment
from fmhub.errors import ComputeUnavailableError, SpecError
from fmhub.services.specs import DeploymentSpec, build_spec


def test_local_is_the_default_and_takes_no_replica_bounds():
    spec = build_spec(DeploymentSpec, {"model": "m:1"}, "the deployment")
    assert spec.backend == "local" and spec.min_replicas is None and spec.max_replicas is None
    with pytest.raises(SpecError) as err:
        build_spec(DeploymentSpec, {"model": "m:1", "max_replicas": 4}, "the deployment")
    assert "max_replicas apply to backend ray only" in err.value.message and "instances" in err.value.message


def test_ray_bounds_default_and_are_checked():
    spec = build_spec(DeploymentSpec, {"model": "m:1", "backend": "ray"}, "the deployment")
    assert (spec.min_replicas, spec.max_replicas) == (1, 1)
    spec = build_spec(DeploymentSpec, {"model": "m:1", "backend": "ray", "min_replicas": 2}, "the deployment")
    assert (spec.min_replicas, spec.max_replicas) == (2, 2)
    with pytest.raises(SpecError) as err:
        build_spec(DeploymentSpec, {"model": "m:1", "backend": "ray", "min_replicas": 3, "max_replicas": 2},
                   "the deployment")
    assert "max_replicas (2) is below min_replicas (3)" in err.value.message
    with pytest.raises(SpecError) as err:
        build_spec(DeploymentSpec, {"model": "m:1", "backend": "ray", "min_replicas": 0}, "the deployment")
    assert "min_replicas: must be >= 1 (got 0) (flag --min-replicas)" in err.value.message
    with pytest.raises(SpecError):
        build_spec(DeploymentSpec, {"model": "m:1", "backend": "kubernetes"}, "the deployment")


def test_replica_bounds_are_recorded_with_the_deployment(ctx):
    from fmhub.store import endpoints_repo

    endpoints_repo.create_endpoint(ctx.db_url, "ep", "", "k1", "k2")
    endpoints_repo.upsert_deployment(ctx.db_url, Deployment(endpoint="ep", name="green", model="m:1",
                                                            task="text-classification", backend="ray",
                                                            min_replicas=1, max_replicas=4, device="cuda"))
    d = endpoints_repo.get_endpoint(ctx.db_url, "ep").deployments[0]
    assert (d.backend, d.min_replicas, d.max_replicas, d.device) == ("ray", 1, 4, "cuda")


def test_a_ray_deployment_without_a_cluster_is_refused_before_anything_starts(ctx, monkeypatch):
    from fmhub.config import get_settings
    from fmhub.services import endpoints as endpoints_service

    monkeypatch.delenv("FMHUB_RAY_ADDRESS", raising=False)
    get_settings.cache_clear()
    endpoints_service.create_endpoint(ctx, "ep")
    spec = DeploymentSpec(model="whatever:1", backend="ray")
    with pytest.raises(ComputeUnavailableError) as err:
        endpoints_service._check_ray_cluster(spec)
    assert "FMHUB_RAY_ADDRESS" in err.value.message


def test_replica_resources_follow_the_device():
    from fmhub.serving.ray_serve import actor_options, app_name

    cpu = Deployment(endpoint="ep", name="blue", model="m:1", task="text-classification", backend="ray")
    assert actor_options(cpu) == {"num_cpus": 1}
    assert actor_options(cpu.model_copy(update={"device": "cuda"}))["num_gpus"] == 1
    assert app_name("my-ep", "green") == "fmhub.my-ep.green"


def test_importing_the_serving_runtime_does_not_import_ray():
    import subprocess
    import sys

    code = ("import sys, fmhub.services.serving, fmhub.serving.ray_serve; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_cli_deploy_help_names_the_backend_and_replica_flags():
    from fmhub.cli.app import app

    result = CliRunner().invoke(app, ["endpoints", "deploy", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in ("--backend", "--min-replicas", "--max-replicas", "--device"):
        assert flag in result.output


def test_instances_with_the_ray_backend_is_refused_naming_the_replica_flags():
    with pytest.raises(SpecError) as err:
        build_spec(DeploymentSpec, {"model": "m:1", "backend": "ray", "instances": 3}, "the deployment")
    assert "instances applies to backend local only" in err.value.message and "--min-replicas" in err.value.message


def test_more_replicas_than_the_cluster_has_cpus_is_refused_before_anything_starts(monkeypatch):
    from fmhub import raycluster
    from fmhub.raycluster import ClusterResources
    from fmhub.services.endpoints import _check_ray_cluster

    cluster = ClusterResources(address="127.0.0.1:1", nodes=1, cpus=4, gpus=0)
    monkeypatch.setattr(raycluster, "cluster_resources", lambda address=None: cluster)
    fits = build_spec(DeploymentSpec, {"model": "m:1", "backend": "ray", "min_replicas": 4}, "the deployment")
    assert _check_ray_cluster(fits) is False
    too_many = build_spec(DeploymentSpec, {"model": "m:1", "backend": "ray", "min_replicas": 5}, "the deployment")
    with pytest.raises(SpecError) as err:
        _check_ray_cluster(too_many)
    assert "min_replicas 5 asks 5 CPUs" in err.value.message and "4 CPUs" in err.value.message
    assert "--min-replicas 4" in err.value.hint
