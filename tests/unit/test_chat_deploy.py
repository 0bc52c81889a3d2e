"""Chat deployments: what they are refused on (backend ray, runtime vllm without CUDA and vllm,
pytorch-int8), and the dispatcher's bound on open conversations (429)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_chat import build_byte_chat_llama  # noqa: E402

from fmhub.errors import SpecError  # noqa: E402


@pytest.fixture()
def chat_ctx(ctx, tmp_path):
    from fmhub.services import endpoints as endpoints_service
    from fmhub.services.models import import_model

    import_model(ctx, build_byte_chat_llama(tmp_path / "tiny-chat"), name="tiny-chat", task="chat-completion")
    endpoints_service.create_endpoint(ctx, "chat")
    return ctx


@pytest.mark.parametrize("settings, says", [
    ({"backend": "ray"}, "backend local"),
    ({"runtime": "pytorch-int8"}, "--runtime pytorch"),
    ({"runtime": "vllm"}, "runtime vllm cannot run here"),
    ({"runtime": "vllm", "device": "cuda"}, "runtime vllm cannot run here"),
])
def test_chat_deployments_are_refused_where_they_cannot_run(chat_ctx, settings, says):
    from fmhub.services.endpoints import plan_deployment
    from fmhub.services.specs import DeploymentSpec

    with pytest.raises(SpecError) as err:
        plan_deployment(chat_ctx, "chat", DeploymentSpec(model="tiny-chat:1", **settings))
    assert says in str(err.value)


def test_a_chat_deployment_plans_on_backend_local(chat_ctx):
    from fmhub.services.endpoints import plan_deployment
    from fmhub.services.specs import DeploymentSpec

    planned = plan_deployment(chat_ctx, "chat", DeploymentSpec(model="tiny-chat:1", max_batch_size=4))
    assert planned.backend == "local" and planned.traffic == 100


def test_vllm_is_for_chat_deployments_only(ctx, tiny_bert):
    from fmhub.services import endpoints as endpoints_service
    from fmhub.services.endpoints import plan_deployment
    from fmhub.services.models import import_model
    from fmhub.services.specs import DeploymentSpec

    import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification")
    endpoints_service.create_endpoint(ctx, "cls")
    with pytest.raises(SpecError, match="chat deployments only"):
        plan_deployment(ctx, "cls", DeploymentSpec(model="tiny-bert:1", runtime="vllm"))


class _FakeInstance:
    def __init__(self, name):
        self.name, self.state = name, "ready"
        self.chat_stats = {"steps": 0, "max_step_batch": 0, "last_step_batch": 0}
        self.sent, self.cancelled = [], []

    def open_chat(self, chat):
        self.sent.append(chat)
        return len(self.sent), asyncio.Queue()

    def cancel_chat(self, stream_id):
        self.cancelled.append(stream_id)


def test_dispatcher_bounds_open_conversations_and_spreads_them():
    from fmhub.serving.base import QueueFull
    from fmhub.serving.chat_dispatch import ChatDispatcher

    async def run():
        a, b = _FakeInstance("a"), _FakeInstance("b")
        dispatcher = ChatDispatcher([a, b], max_batch=2, max_queue=1)  # 2 x 2 running + 1 waiting
        streams = [dispatcher.start({"messages": []}) for _ in range(5)]
        assert (len(a.sent), len(b.sent)) == (3, 2)
        with pytest.raises(QueueFull):
            dispatcher.start({"messages": []})
        streams[0].close()  # unfinished: cancelled on its instance, its slot free again
        assert a.cancelled == [1]
        dispatcher.start({"messages": []})
        assert dispatcher.status()["open_conversations"] == 5

    # In a thread of its own: the browser tests' Playwright (sync API) leaves an event loop running
    # in the main thread when they run first in the same session.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, run()).result()
