"""Cancel checked inside the job: the training callback saves a checkpoint and stops, the job ends
``canceled`` by itself with its checkpoints kept, and a resume goes on from there."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_sentiment_csv
from fmhub.entities import JobStatus
from fmhub.errors import JobCanceledError
from fmhub.services import jobs as jobs_service
from fmhub.services.finetune import latest_checkpoint, run_finetune
from fmhub.services.models import import_model
from fmhub.services.specs import FinetuneSpec
from fmhub.store import jobs_repo
from fmhub.training import cancel as cancel_module


class CancelAtStep:
    """A progress sink that requests the job's cancel (as ``fmhub jobs cancel`` does) at a step."""

    def __init__(self, ctx, step):
        self.ctx, self.at, self.job_id, self.steps = ctx, step, None, []

    def event(self, kind, data):
        if kind == "stage" and data.get("stage") == "training" and self.job_id is None:
            self.job_id = jobs_repo.list_jobs(self.ctx.db_url)[0].id

    def step(self, step, total, loss):
        self.steps.append(step)
        if step == self.at:
            jobs_repo.request_cancel(self.ctx.db_url, self.job_id)


@pytest.fixture()
def spec(ctx, tiny_bert, tmp_path):
    import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification", license="apache-2.0")
    train = write_sentiment_csv(tmp_path / "reviews.csv", n=40)
    return FinetuneSpec(model="tiny-bert:1", task="text-classification",
                        data={"train": str(train), "validation": "none", "test": "none",
                              "column_mapping": {"sentence1": "review", "label": "stars"}},
                        hyperparameters={"max_steps": 60, "per_device_train_batch_size": 4, "logging_steps": 5},
                        registered_model_name="stopped", device="cpu")


def test_a_requested_cancel_stops_training_with_a_checkpoint_and_the_job_ends_canceled(ctx, spec, monkeypatch):
    monkeypatch.setattr(cancel_module, "CHECK_EVERY_S", 0.0)  # ask after every step
    sink = CancelAtStep(ctx, step=3)
    with pytest.raises(JobCanceledError, match="canceled by the user"):
        run_finetune(ctx, spec, sink=sink)
    job = jobs_repo.get_job(ctx.db_url, sink.job_id)
    assert job.status == JobStatus.canceled and job.error == "canceled by the user"
    assert max(sink.steps) == 3  # the callback asked right after the step the cancel came in
    checkpoint = latest_checkpoint(Path(job.folder))
    assert checkpoint is not None and checkpoint.name == "checkpoint-3"
    kinds = [e.kind for e in jobs_service.job_events(ctx, job.id)]
    assert "checkpoint" in kinds and "done" not in kinds

    # a resume continues from that checkpoint and finishes
    jobs_repo.requeue(ctx.db_url, job.id, resume=True, from_status=(JobStatus.canceled,), reason="test")
    claimed = jobs_service.claim_queued_here(ctx, job.id)
    from fmhub.services.finetune import execute_finetune

    result = execute_finetune(ctx, claimed)
    assert result.job.status == JobStatus.completed and result.train["global_step"] == 60
    resumed = [e.data for e in jobs_service.job_events(ctx, job.id) if e.data.get("stage") == "resuming"]
    assert resumed and resumed[0]["from_step"] == 3


def test_the_callback_asks_at_most_once_per_interval_and_a_failing_question_means_go_on():
    from types import SimpleNamespace

    calls = []

    def should_stop():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database busy")
        return True

    callback = cancel_module.CancelCallback(should_stop, every_s=3600.0)
    control = SimpleNamespace(should_save=False, should_training_stop=False, should_evaluate=True)
    for step in range(1, 20):
        callback.on_step_end(None, SimpleNamespace(global_step=step), control)
    assert calls == [] and not control.should_training_stop  # within the first interval: not asked
    callback.every_s = 0.0
    callback.on_step_end(None, SimpleNamespace(global_step=20), control)
    assert len(calls) == 1 and not control.should_training_stop  # the failed look counts as "go on"
    callback.on_step_end(None, SimpleNamespace(global_step=21), control)
    assert control.should_training_stop and control.should_save and callback.stopped_at == 21
    callback.on_epoch_end(None, SimpleNamespace(global_step=21), control)
    assert not control.should_evaluate and not control.should_save


def test_an_evaluate_job_checks_its_cancel_while_predicting(ctx, spec, tmp_path, monkeypatch):
    from fmhub.services import evaluate as evaluate_module
    from fmhub.services.specs import EvaluateSpec

    run_finetune(ctx, spec.model_copy(update={"hyperparameters": spec.hyperparameters.model_copy(
        update={"max_steps": 2})}))
    monkeypatch.setattr(evaluate_module, "CANCEL_CHECK_S", 0.0)
    test = write_sentiment_csv(tmp_path / "holdout.csv", n=12)
    ticks = []

    def progress(done, total):
        ticks.append(done)
        if len(ticks) == 1:
            jobs_repo.request_cancel(ctx.db_url, jobs_repo.list_jobs(ctx.db_url)[0].id)

    with pytest.raises(JobCanceledError, match=r"canceled by the user after \d+ of 12 rows"):
        evaluate_module.run_evaluate(ctx, EvaluateSpec(model="stopped:1", data={"test": str(test)}, device="cpu",
                                                       per_device_eval_batch_size=2), progress=progress)
    job = jobs_repo.list_jobs(ctx.db_url)[0]
    assert job.kind == "evaluate" and job.status == JobStatus.canceled and job.error == "canceled by the user"
    assert len(ticks) == 1  # stopped at the first look after the cancel
    assert not [e for e in jobs_service.job_events(ctx, job.id) if e.kind == "done"]
