"""The parts of distributed fine-tuning that need no cluster: one Trainer set-up shared by local and
Ray Train runs, the resources asked per worker, and the compute recorded in every lineage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import write_sentiment_csv
from fmhub.services.finetune import run_finetune
from fmhub.services.finetune_ray import compute_record
from fmhub.services.models import import_model
from fmhub.services.specs import FinetuneSpec
from fmhub.training import ray_train, trainer as trainer_module


def test_local_and_ray_runs_build_their_trainer_with_the_same_function():
    assert ray_train.build_trainer is trainer_module.build_trainer
    source = Path(trainer_module.__file__).read_text(encoding="utf-8")
    assert source.count("_bucketed_trainer_class()(") == 1  # one construction, in build_trainer


def test_ray_is_imported_inside_functions_only():
    tree = ast.parse(Path(ray_train.__file__).read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n == "ray" or n.startswith("ray.")]


def test_resources_per_worker_use_rays_names():
    assert ray_train.scaling_resources(1, 0) == {"CPU": 1.0}
    assert ray_train.scaling_resources(2, 1, {"special": 1}) == {"CPU": 2.0, "special": 1.0, "GPU": 1.0}


def test_the_agreed_cancel_asks_like_the_plain_one_outside_a_process_group():
    from types import SimpleNamespace

    callback = ray_train.AgreedCancelCallback(lambda: True, every_s=0.0)
    control = SimpleNamespace(should_save=False, should_training_stop=False, should_evaluate=True)
    callback.on_step_end(None, SimpleNamespace(global_step=3), control)
    assert callback.stopped_at == 3 and control.should_training_stop and control.should_save


@pytest.fixture()
def spec(ctx, tiny_bert, tmp_path):
    import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification", license="apache-2.0")
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=24)
    return FinetuneSpec(model="tiny-bert:1", task="text-classification",
                        data={"train": str(train), "validation": "none", "test": "none",
                              "column_mapping": {"sentence1": "review", "label": "stars"}},
                        hyperparameters={"max_steps": 2, "per_device_train_batch_size": 4},
                        registered_model_name="local-compute", device="cpu")


def test_a_local_job_runs_build_trainer_once_and_its_lineage_says_compute_local(ctx, spec, monkeypatch):
    calls = []
    real = trainer_module.build_trainer

    def spy(*args, **kwargs):
        calls.append(kwargs.get("world_size", 1))
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "build_trainer", spy)
    result = run_finetune(ctx, spec)
    assert calls == [1]
    assert result.model_version.lineage["compute"] == {"compute": "local"}
    assert result.train["workers"] == 1


def test_a_ray_spec_records_its_resources():
    spec = FinetuneSpec(model="m:1", task="text-classification",
                        data={"train": "t.csv", "column_mapping": {"sentence1": "a", "label": "b"}},
                        compute="ray", resources={"num_workers": 2, "num_cpus": 1, "custom": {"special": 1}})
    assert compute_record(spec) == {"compute": "ray", "num_workers": 2, "num_cpus": 1.0, "num_gpus": 0.0,
                                    "custom": {"special": 1.0}}


def test_a_distributed_trainer_counts_the_global_batch(ctx, spec):
    from fmhub.devices import choose_device
    from fmhub.services.finetune import validate
    from fmhub.training.progress import ProgressCallback

    task, resolved, tokenizer, hp, prepared = validate(ctx, spec)
    train_ds = task.encode(prepared.splits["train"], tokenizer, prepared.info, hp.max_seq_length,
                           doc_stride=hp.doc_stride, causal_lm=False)
    model = task.load_model(str(resolved.path), prepared.info)

    class Sink:
        def event(self, kind, data): ...
        def step(self, step, total, loss): ...

    built = trainer_module.build_trainer(task, model, tokenizer, train_ds, None, prepared.info, hp,
                                         ctx.settings.home / "out", choose_device("cpu"), Sink(), world_size=2)
    progress = next(c for c in built.trainer.callback_handler.callbacks if isinstance(c, ProgressCallback))
    assert progress.batch_rows == 8 and progress.steps_per_epoch == 3  # 24 rows, 4 per worker, 2 workers
    assert built.world_size == 2 and built.trainer.args.average_tokens_across_devices is False


def test_with_a_local_store_ray_train_keeps_its_checkpoints_in_the_job_folder(ctx):
    from fmhub.services import jobs as jobs_service
    from fmhub.services.finetune_ray import ray_storage

    job = jobs_service.new_job(ctx, "finetune", {}, compute="ray")
    assert ray_storage(ctx, job) == (str(Path(job.folder) / "ray-train"), None)
