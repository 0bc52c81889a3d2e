"""Submit once: a wizard form sent twice with its page's token queues its job once."""

from __future__ import annotations

import threading
import time

import pytest
from local_client import local_client

from conftest import write_sentiment_csv
from fmhub.ui.submissions import SubmissionLog, new_token


def test_the_same_token_runs_once_even_at_the_same_time():
    log, calls = SubmissionLog(), []

    def submit():
        calls.append(1)
        time.sleep(0.05)
        return f"/ui/jobs/{len(calls)}"

    token = new_token()
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(log.once(token, submit))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert calls == [1] and answers == ["/ui/jobs/1"] * 4
    assert log.once(new_token(), submit) == "/ui/jobs/2"  # another page, another job
    assert log.once("", submit) == "/ui/jobs/3" and log.once("", submit) == "/ui/jobs/4"  # no token: unguarded


def test_a_failed_submission_can_be_sent_again_and_old_tokens_are_forgotten():
    log = SubmissionLog(size=2)
    token = new_token()

    def fail():
        raise ValueError("refused")

    with pytest.raises(ValueError):
        log.once(token, fail)
    assert log.once(token, lambda: "/ui/jobs/a") == "/ui/jobs/a"
    for _ in range(3):
        log.once(new_token(), lambda: "/ui/jobs/b")
    assert log.once(token, lambda: "/ui/jobs/c") == "/ui/jobs/c"  # forgotten after 2 newer ones


def test_a_wizard_form_posted_twice_queues_one_job(ctx, tiny_bert, tmp_path):
    from fmhub.api.app import create_app
    from fmhub.services.assets import create_data_asset
    from fmhub.services.models import import_model

    import_model(ctx, tiny_bert, "tiny", "text-classification")
    create_data_asset(ctx, str(write_sentiment_csv(tmp_path / "reviews.csv", n=40)), "reviews")
    form = {"model": "tiny:1", "task": "text-classification", "data.train": "reviews:1", "data.column_mapping.sentence1": "review",
            "data.column_mapping.label": "stars", "wizard.validation": "auto", "wizard.test": "none",
            "device": "cpu", "hyperparameters.max_steps": "2", "wizard.submission": new_token()}
    with local_client(create_app(ctx, serve_endpoints=False)) as client:
        first = client.post("/ui/models/tiny:1/finetune/submit", data=form, headers={"HX-Request": "true"})
        again = client.post("/ui/models/tiny:1/finetune/submit", data=form, headers={"HX-Request": "true"})
        assert first.status_code == 200 and first.headers["HX-Redirect"].startswith("/ui/jobs/")
        assert again.headers["HX-Redirect"] == first.headers["HX-Redirect"]
        assert client.get("/api/v1/jobs").json()["total"] == 1
        other = client.post("/ui/models/tiny:1/finetune/submit", data={**form, "wizard.submission": new_token()},
                            headers={"HX-Request": "true"})
        assert other.headers["HX-Redirect"] != first.headers["HX-Redirect"]
        assert client.get("/api/v1/jobs").json()["total"] == 2
