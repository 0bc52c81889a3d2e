"""A deployment's defaults use the machine: instances from the cores and the model size (recorded on
the deployment), threads shared out among them, runtime auto; runtimes a task cannot use are refused."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_chat import build_byte_chat_llama  # noqa: E402

from fmhub.errors import SpecError  # noqa: E402
from fmhub.serving import sizing  # noqa: E402

GIB = 1 << 30


def test_small_models_get_one_instance_per_core_large_ones_fewer():
    assert sizing.default_instances(chat=False, on_gpu=False, model_bytes=90 << 20, cores=2, memory=24 * GIB) == 2
    assert sizing.default_instances(chat=False, on_gpu=False, model_bytes=90 << 20, cores=64, memory=256 * GIB) == 16
    assert sizing.default_instances(chat=False, on_gpu=False, model_bytes=6 * GIB, cores=16, memory=128 * GIB) == 4
    assert sizing.default_instances(chat=False, on_gpu=False, model_bytes=6 * GIB, cores=16, memory=16 * GIB) == 1
    assert sizing.default_instances(chat=True, on_gpu=False, model_bytes=1 << 20, cores=8) == 1
    assert sizing.default_instances(chat=False, on_gpu=True, model_bytes=1 << 20, cores=8) == 1
    assert sizing.threads_per_instance(2, cores=2) == 1
    assert sizing.threads_per_instance(1, cores=8) == 8
    assert sizing.threads_per_instance(16, cores=2) == 1


def test_a_deployment_records_the_instances_chosen_for_it(ctx, tiny_bert, tmp_path, monkeypatch):
    from fmhub.services import endpoints as endpoints_service
    from fmhub.services.endpoints import plan_deployment
    from fmhub.services.models import import_model
    from fmhub.services.specs import DeploymentSpec

    from transformers import AutoTokenizer

    from fmhub.tasks import get_task
    from fmhub.tasks.base import LabelInfo

    folder = tmp_path / "classifier"
    get_task("text-classification").load_model(str(tiny_bert), LabelInfo(labels=["neg", "pos"])).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(tiny_bert)).save_pretrained(folder)
    monkeypatch.setattr(sizing, "cpu_cores", lambda: 3)
    import_model(ctx, folder, name="tiny-bert", task="text-classification")
    endpoints_service.create_endpoint(ctx, "cls")
    planned = plan_deployment(ctx, "cls", DeploymentSpec(model="tiny-bert:1"))
    assert planned.instances == 3 and planned.runtime == "auto"
    assert plan_deployment(ctx, "cls", DeploymentSpec(model="tiny-bert:1", instances=1)).instances == 1
    shown = endpoints_service.get_endpoint(ctx, "cls").deployments[0]
    assert shown.instances == 1
    for runtime in ("onnx", "pytorch-bf16"):
        assert plan_deployment(ctx, "cls", DeploymentSpec(model="tiny-bert:1", runtime=runtime)).runtime == runtime


def test_chat_deployments_refuse_the_classic_runtimes(ctx, tmp_path):
    from fmhub.services import endpoints as endpoints_service
    from fmhub.services.endpoints import plan_deployment
    from fmhub.services.models import import_model
    from fmhub.services.specs import DeploymentSpec

    import_model(ctx, build_byte_chat_llama(tmp_path / "tiny-chat"), name="tiny-chat", task="chat-completion")
    endpoints_service.create_endpoint(ctx, "chat")
    assert plan_deployment(ctx, "chat", DeploymentSpec(model="tiny-chat:1")).instances == 1
    for runtime in ("pytorch-bf16", "onnx"):
        with pytest.raises(SpecError, match="serves the classic tasks"):
            plan_deployment(ctx, "chat", DeploymentSpec(model="tiny-chat:1", runtime=runtime))
