"""The serving seam: an endpoint scores through whatever backend its deployment names."""

from __future__ import annotations

import asyncio
import json

import pytest

from fmhub.errors import OverloadedError, ScoringTimeoutError, SpecError, UnavailableError
from fmhub.serving.base import QueueFull, ServingBackend


def run_async(coro):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class EchoBackend:
    """A backend with no processes: it answers each input with its upper case."""

    name = "local"

    def __init__(self, fail=None, delay_s=0.0):
        self.started, self.scored, self.stopped = [], [], []
        self.fail, self.delay_s = fail, delay_s

    async def start(self, deployment, model_path, notify):
        self.started.append((deployment.endpoint, deployment.name, model_path))
        notify(f"echo {deployment.name} ready")

    async def wait_ready(self, endpoint, name, timeout_s):
        return None

    def status(self, endpoint, name):
        return {"state": "ready", "processes": []} if (endpoint, name) in {s[:2] for s in self.started} else None

    def running(self):
        return [s[:2] for s in self.started]

    async def score(self, endpoint, name, inputs, params):
        if self.fail is not None:
            raise self.fail
        await asyncio.sleep(self.delay_s)
        self.scored.append((name, list(inputs), dict(params)))
        return [{"label": str(x).upper()} for x in inputs]

    async def stop(self, endpoint, name):
        self.stopped.append((endpoint, name))

    async def shutdown(self):
        pass


@pytest.fixture()
def endpoint(ctx, tiny_bert):
    from fmhub.services import endpoints as endpoints_service
    from fmhub.services.models import import_model

    import_model(ctx, tiny_bert, name="tiny", task="text-classification", license="apache-2.0")
    endpoints_service.create_endpoint(ctx, "ep")
    return "Bearer " + endpoints_service.get_keys(ctx, "ep")["primary_key"]


def _deployment(**kw):
    from fmhub.entities import Deployment

    return Deployment(**{"endpoint": "ep", "name": "blue", "model": "tiny:1", "task": "text-classification",
                         "traffic": 100, **kw})


async def _start(ctx, rt, deployment):
    """Record the deployment (routing reads the recorded ones) and start it in ``rt``."""
    from fmhub.store import endpoints_repo

    endpoints_repo.upsert_deployment(ctx.db_url, deployment)
    return await rt.start(deployment)


def test_both_backends_meet_the_protocol():
    from fmhub.serving.local import LocalServingBackend

    assert isinstance(LocalServingBackend(), ServingBackend) and isinstance(EchoBackend(), ServingBackend)


def test_the_endpoint_parses_checks_and_routes_while_the_backend_scores(ctx, endpoint):
    from fmhub.services.serving import EndpointRuntime

    backend = EchoBackend()

    async def go():
        rt = EndpointRuntime(ctx, backends={"local": backend})
        await _start(ctx, rt, _deployment())
        answer = await rt.score("ep", json.dumps({"inputs": "a film"}).encode(), endpoint)
        status = rt.status("ep")
        await rt.shutdown()
        return rt, answer, status

    rt, answer, status = run_async(go())
    assert answer == {"deployment": "blue", "model": "tiny:1", "task": "text-classification",
                      "predictions": [{"label": "A FILM"}]}
    assert backend.scored == [("blue", ["a film"], {})]  # decoded before it reached the backend
    assert status["blue"]["state"] == "ready" and backend.stopped == [("ep", "blue")]
    assert any("echo blue ready" in line for line in rt.log_lines("ep"))


@pytest.mark.parametrize("fail, error", [(QueueFull(), OverloadedError), (RuntimeError("boom"), UnavailableError)])
def test_backend_errors_map_to_the_same_answers(ctx, endpoint, fail, error):
    from fmhub.services.serving import EndpointRuntime

    async def go():
        rt = EndpointRuntime(ctx, backends={"local": EchoBackend(fail=fail)})
        await _start(ctx, rt, _deployment())
        with pytest.raises(error):
            await rt.score("ep", b'{"input_data": ["x"]}', endpoint)

    run_async(go())


def test_a_slow_backend_answers_504(ctx, endpoint):
    from fmhub.services.serving import EndpointRuntime

    async def go():
        rt = EndpointRuntime(ctx, backends={"local": EchoBackend(delay_s=5)})
        await _start(ctx, rt, _deployment(request_timeout_ms=100))
        with pytest.raises(ScoringTimeoutError):
            await rt.score("ep", b'{"input_data": ["x"]}', endpoint)

    run_async(go())


def test_an_unknown_backend_is_refused_naming_the_known_ones(ctx, endpoint):
    from fmhub.services.serving import EndpointRuntime

    async def go():
        rt = EndpointRuntime(ctx)
        with pytest.raises(SpecError, match="unknown serving backend 'kubernetes'.*local, ray"):
            await _start(ctx, rt, _deployment(backend="kubernetes"))

    run_async(go())
