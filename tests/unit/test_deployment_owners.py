"""Deployment owners on one database: one server runs each deployment; a deployment deleted or
deployed again through another server is stopped by its old owner at its next round; a released
deployment is taken by another server."""

from __future__ import annotations

import pytest

from test_serving_backend import EchoBackend, run_async


@pytest.fixture()
def two_servers(ctx, tiny_bert):
    from fmhub.services import endpoints as endpoints_service
    from fmhub.services.models import import_model
    from fmhub.services.serving import EndpointRuntime

    import_model(ctx, tiny_bert, name="tiny", task="text-classification", license="apache-2.0")
    endpoints_service.create_endpoint(ctx, "ep")
    a = EndpointRuntime(ctx, backends={"local": EchoBackend()}, owner="serve:a:1", owner_url="http://a")
    b = EndpointRuntime(ctx, backends={"local": EchoBackend()}, owner="serve:b:2", owner_url="http://b")
    return a, b


def _deployment(**kw):
    from fmhub.entities import Deployment

    return Deployment(**{"endpoint": "ep", "name": "blue", "model": "tiny:1", "task": "text-classification",
                         "traffic": 100, **kw})


async def _deploy(ctx, rt, deployment):
    """What a deploy through ``rt`` does: record, take the lease, start."""
    from fmhub.services import deployment_owners
    from fmhub.store import endpoints_repo

    endpoints_repo.upsert_deployment(ctx.db_url, deployment)
    await deployment_owners.take(ctx, rt, deployment.endpoint, deployment.name)
    await rt.start(deployment)


def test_one_owner_and_a_deletion_through_the_other_server_stops_the_owner(ctx, two_servers):
    from fmhub.services import deployment_owners
    from fmhub.store import endpoints_repo

    a, b = two_servers

    async def go():
        await _deploy(ctx, a, _deployment())
        await deployment_owners.sync(ctx, b)  # B sees A holds it: B starts nothing
        assert ("ep", "blue") in a.live and ("ep", "blue") not in b.live
        assert b.status("ep")["blue"]["owner"] == "serve:a:1"
        endpoints_repo.delete_deployment(ctx.db_url, "ep", "blue")  # deleted through B
        await deployment_owners.sync(ctx, a)
        assert ("ep", "blue") not in a.live
        assert a.backends["local"].stopped == [("ep", "blue")]

    run_async(go())


def test_a_deploy_through_the_other_server_moves_it_and_the_old_copy_stops(ctx, two_servers):
    from fmhub.services import deployment_owners

    a, b = two_servers

    async def go():
        await _deploy(ctx, a, _deployment())
        await _deploy(ctx, b, _deployment(runtime="pytorch-int8"))  # B takes it over
        await deployment_owners.sync(ctx, a)
        await deployment_owners.sync(ctx, b)
        assert ("ep", "blue") not in a.live and b.live[("ep", "blue")].record.runtime == "pytorch-int8"
        assert any("no longer run by this server" in line for line in a.log_lines("ep"))

    run_async(go())


def test_a_released_deployment_is_taken_by_the_other_server(ctx, two_servers):
    from fmhub.services import deployment_owners

    a, b = two_servers

    async def go():
        await _deploy(ctx, a, _deployment())
        await a.shutdown()  # a clean stop hands its leases over
        await deployment_owners.sync(ctx, b)
        assert ("ep", "blue") in b.live and b.status("ep")["blue"]["owner"] == "serve:b:2"
        assert any("taken by serve:b:2 from serve:a:1" in line or "taken by serve:b:2" in line
                   for line in b.log_lines("ep"))

    run_async(go())


def test_a_flood_of_bad_requests_never_pushes_the_deployments_story_out_of_the_log(ctx, two_servers):
    from fmhub.errors import UnauthorizedError
    from fmhub.services import deployment_owners
    from fmhub.store import endpoint_logs_repo

    a, b = two_servers

    async def go():
        await _deploy(ctx, a, _deployment())
        await deployment_owners.sync(ctx, a)
        for _ in range(2):  # two rounds of writes, each more than the log keeps
            for _ in range(endpoint_logs_repo.KEEP_LINES + 100):
                with pytest.raises(UnauthorizedError):
                    await b.score("ep", b'{"input_data": ["x"]}', "Bearer nope")
            await deployment_owners.sync(ctx, b)
        lines = a.log_lines("ep")
        assert any("starting 1 instance" in line for line in lines)  # the lifecycle lines stay
        refused = [line for line in lines if "401" in line]
        assert len(refused) == b.REQUEST_LINES_PER_WINDOW  # the rest were counted, not written

    run_async(go())


@pytest.mark.parametrize("url", ["http://*:8000", "http://*.example.com:8000", "ftp://node:21", "http://a b:1",
                                 "http://node:99999", "http://user:pw@node:1", "http://node:1/path", "node:8000"])
def test_an_advertise_url_must_name_one_host(url):
    from fmhub.cli.serve import _advertised_host
    from fmhub.errors import SpecError

    with pytest.raises(SpecError, match="--advertise-url"):
        _advertised_host(url)


def test_an_advertise_url_host_is_accepted_by_name_or_address():
    from fmhub.cli.serve import _advertised_host

    assert [_advertised_host(u) for u in ("http://node-1.internal:8000", "https://10.0.0.7", "http://[::1]:80")] \
        == ["node-1.internal", "10.0.0.7", "::1"]
