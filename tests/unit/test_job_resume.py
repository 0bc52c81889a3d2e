"""Interrupted fine-tunes keep their checkpoints; a resume continues the step count; a job's model
registered later from its folder; the same code runs in the foreground and in a job process."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from conftest import write_sentiment_csv
from fmhub.entities import JobStatus
from fmhub.errors import ConflictError, JobCanceledError
from fmhub.services import jobs as jobs_service
from fmhub.services.finetune import run_finetune
from fmhub.services.models import import_model
from fmhub.services.registration import register_job_model
from fmhub.services.specs import FinetuneSpec
from sinks import InterruptAt


def _spec(train, **kw):
    return FinetuneSpec(model="tiny-bert:1", task="text-classification",
                        data={"train": str(train), "validation": "none", "test": "none",
                              "column_mapping": {"sentence1": "review", "label": "stars"}},
                        hyperparameters={"max_steps": 12, "save_steps": 4, "per_device_train_batch_size": 4,
                                         "logging_steps": 1},
                        registered_model_name="resumed", device="cpu", **kw)


@pytest.fixture()
def train(ctx, tiny_bert, tmp_path):
    import_model(ctx, tiny_bert, name="tiny-bert", task="text-classification")
    return write_sentiment_csv(tmp_path / "reviews.csv", n=40)


def test_interrupted_job_keeps_checkpoints_and_foreground_resume_goes_on_from_there(ctx, train, monkeypatch):
    with pytest.raises(JobCanceledError, match="fmhub jobs resume"):
        run_finetune(ctx, _spec(train), sink=InterruptAt(6))
    job = jobs_service.list_jobs(ctx)[0]
    assert job.status == JobStatus.canceled
    from pathlib import Path

    kept = sorted(p.name for p in (Path(job.folder) / "checkpoints").glob("checkpoint-*"))
    assert kept == ["checkpoint-4"]

    from fmhub.cli.app import app

    result = CliRunner().invoke(app, ["jobs", "resume", job.id, "--foreground", "--json"])
    assert result.exit_code == 0, result.output
    done = jobs_service.get_job(ctx, job.id)
    assert done.status == JobStatus.completed and done.attempts == 2
    events = jobs_service.job_events(ctx, job.id)
    resuming = [e for e in events if e.kind == "stage" and e.data["stage"] == "resuming"]
    assert [e.data["from_step"] for e in resuming] == [4]
    after = [e.data["step"] for e in events if e.kind == "train" and e.seq > resuming[0].seq]
    assert after[0] == 5 and after[-1] == 12
    assert done.outputs["registered_model"] == "resumed:1"


def test_a_job_run_without_registering_keeps_its_model_for_a_later_register(ctx, train):
    result = run_finetune(ctx, _spec(train, register_model=False))
    assert result.model_version is None
    job = result.job
    assert job.outputs["model_folder"].endswith("model")
    version = register_job_model(ctx, job.id, name="later")
    assert version.ref == "later:1" and version.lineage["job_id"] == job.id
    assert jobs_service.get_job(ctx, job.id).outputs["registered_model"] == "later:1"
    with pytest.raises(ConflictError, match="registered its model already"):
        register_job_model(ctx, job.id)
