"""The store: migrations from the first table, version numbering, the artifact store."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from fmhub.entities import JobStatus, ModelVersion
from fmhub.errors import NotFoundError
from fmhub.store import db, jobs_repo, models_repo
from fmhub.store.artifacts import ArtifactStore


def test_migrations_create_all_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = db.get_engine(url)
    names = set(inspect(engine).get_table_names())
    assert {"model_versions", "data_assets", "jobs", "job_events", "alembic_version"} <= names


def test_versions_increase_and_lookup(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    for v in (1, 2):
        assert models_repo.next_version(url, "m") == v
        models_repo.add_version(url, ModelVersion(name="m", version=v, task="text-classification", path="/p"))
    assert models_repo.get_version(url, "m").version == 2
    assert models_repo.get_version(url, "m", 1).version == 1
    with pytest.raises(NotFoundError) as exc:
        models_repo.get_version(url, "m", 7)
    assert "1, 2" in exc.value.hint or "2, 1" in exc.value.hint


def test_job_status_and_events(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    jobs_repo.create_job(url, "j1", "finetune", {"a": 1}, str(tmp_path))
    jobs_repo.set_status(url, "j1", JobStatus.running)
    for step in range(3):
        jobs_repo.append_event(url, "j1", "train", {"step": step})
    job = jobs_repo.set_status(url, "j1", JobStatus.completed, outputs={"x": 1})
    assert job.started_at is not None and job.finished_at is not None
    events = jobs_repo.list_events(url, "j1", after_seq=1)
    assert [e.seq for e in events] == [2, 3] and events[-1].data == {"step": 2}


def test_place_dir_is_atomic(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("x")
    dest = store.model_dir("m", 1)
    store.place_dir(src, dest)
    assert (dest / "a.txt").read_text() == "x"
    with pytest.raises(FileExistsError):
        store.place_dir(src, dest)
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".tmp")]


def test_claim_next_on_sqlite_gives_each_job_once(tmp_path):
    import threading

    url = f"sqlite:///{tmp_path / 'x.db'}"
    for i in range(40):
        jobs_repo.create_job(url, f"j{i:02d}", "finetune", {}, str(tmp_path))
    claimed: list[str] = []

    def work(w: int) -> None:
        while (job := jobs_repo.claim_next(url, f"w{w}")) is not None:
            claimed.append(job.id)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(claimed) == [f"j{i:02d}" for i in range(40)]
    assert jobs_repo.claim_next(url, "late") is None


def test_sqlite_migration_renumbers_repeated_event_numbers(tmp_path):
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = db.unchecked_engine(url)
    db.upgrade(engine, "0005")
    with engine.begin() as c:
        c.execute(text("INSERT INTO jobs (id, kind, status, compute, spec, outputs, created_at, attempts, resume, "
                       "cancel_requested) VALUES ('j', 'finetune', 'completed', 'local', '{}', '{}', "
                       "'2026-01-01', 1, 0, 0)"))
        for seq in (1, 2, 2, 3):
            c.execute(text("INSERT INTO job_events (job_id, seq, kind, data, created_at) "
                           "VALUES ('j', :s, 'train', '{}', '2026-01-01')"), {"s": seq})
    db.dispose_all()
    assert [e.seq for e in jobs_repo.list_events(url, "j")] == [1, 2, 3, 4]  # migrated on first use
    assert jobs_repo.append_event(url, "j", "train", {}) == 5
    assert models_repo.next_version(url, "new") == 1


def test_a_database_url_is_shown_without_any_password():
    from fmhub.store.db import display_url

    shown = display_url("postgresql+psycopg://fmhub:pw1@db.internal:5432/fmhub?password=pw2&sslmode=require")
    assert shown == "postgresql://fmhub@db.internal:5432/fmhub" and "pw" not in shown
