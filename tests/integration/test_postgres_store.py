"""The store on a real PostgreSQL server: JSONB, the SKIP LOCKED queue, numbers that concurrent
writers never repeat, and the schema check of a shared database (``fmhub db upgrade``).

Needs the test PostgreSQL server (``scripts/test-services.sh start``); skipped without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from fmhub.entities import JobStatus, ModelVersion
from fmhub.store import assets_repo, db, jobs_repo, models_repo

pytestmark = [pytest.mark.postgres, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]


def _run_threads(n: int, target) -> list:
    """Run ``target(i)`` in ``n`` threads released together; return the results (bounded wait)."""
    barrier = threading.Barrier(n)

    def go(i):
        barrier.wait(timeout=30)
        return target(i)

    with ThreadPoolExecutor(n) as pool:
        return [f.result(timeout=120) for f in [pool.submit(go, i) for i in range(n)]]


def test_json_columns_are_jsonb_and_round_trip(postgres_url):
    engine = db.get_engine(postgres_url)
    columns = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("jobs")}
    assert type(columns["spec"]).__name__ == "JSONB"
    spec = {"text": "naïve — ünïcode ✓", "nested": {"list": [1, 2.5, None, True], "empty": {}}, "n": 10**12}
    jobs_repo.create_job(postgres_url, "j1", "finetune", spec, "/jobs/j1")
    jobs_repo.update_outputs(postgres_url, "j1", {"metrics": {"accuracy": 0.75}})
    job = jobs_repo.get_job(postgres_url, "j1")
    assert job.spec == spec and job.outputs == {"metrics": {"accuracy": 0.75}}
    # JSONB compares by value: the query PostgreSQL's plain json type cannot answer
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM jobs WHERE spec -> 'nested' = "
                                 "CAST(:v AS jsonb)"), {"v": '{"empty": {}, "list": [1, 2.5, null, true]}'}
                         ).scalar() == 1
    models_repo.add_version(postgres_url, ModelVersion(name="m", version=1, task="text-classification", path="/p",
                                                       lineage={"architecture": "BertForSequenceClassification"},
                                                       description="a tiny test model"))
    found, total = models_repo.search_latest(postgres_url, search="sequenceclass")
    assert total == 1 and found[0].lineage["architecture"] == "BertForSequenceClassification"


def test_skip_locked_claims_give_every_job_to_exactly_one_worker(postgres_url):
    n_jobs, n_workers = 200, 4
    for i in range(n_jobs):
        jobs_repo.create_job(postgres_url, f"job{i:04d}", "finetune" if i % 2 else "evaluate", {}, f"/j/{i}")

    def work(w: int) -> list[str]:
        mine = []
        while (job := jobs_repo.claim_next(postgres_url, f"worker:test:{w}")) is not None:
            assert job.status == JobStatus.running and job.worker == f"worker:test:{w}" and job.attempts == 1
            mine.append(job.id)
            jobs_repo.set_status(postgres_url, job.id, JobStatus.completed)
        return mine

    claimed = _run_threads(n_workers, work)
    ids = [j for mine in claimed for j in mine]
    assert len(ids) == n_jobs and len(set(ids)) == n_jobs  # each exactly once
    assert all(mine for mine in claimed)  # every worker got some (nobody waited on another's lock)
    assert jobs_repo.count_jobs(postgres_url, status="completed") == n_jobs
    assert jobs_repo.claim_next(postgres_url, "worker:test:late") is None


def test_claims_by_id_as_the_scheduler_makes_them_give_each_job_once(postgres_url):
    n_jobs, n_workers = 60, 4
    ids = [f"byid{i:03d}" for i in range(n_jobs)]
    for job_id in ids:
        jobs_repo.create_job(postgres_url, job_id, "finetune", {}, f"/j/{job_id}")

    def work(w: int) -> list[str]:  # every worker tries every job, as schedulers reading one queue do
        return [job_id for job_id in ids if jobs_repo.claim(postgres_url, job_id, f"worker:test:{w}")]

    claimed = [j for mine in _run_threads(n_workers, work) for j in mine]
    assert sorted(claimed) == ids  # each exactly once
    assert {jobs_repo.get_job(postgres_url, j).attempts for j in ids} == {1}


def test_claim_next_filters_and_order(postgres_url):
    jobs_repo.create_job(postgres_url, "a", "finetune", {}, "/a", compute="ray")
    jobs_repo.create_job(postgres_url, "b", "evaluate", {}, "/b")
    jobs_repo.create_job(postgres_url, "c", "finetune", {}, "/c")
    assert jobs_repo.claim_next(postgres_url, "w", kinds=["import"]) is None
    assert jobs_repo.claim_next(postgres_url, "w", kinds=["finetune"], computes=["local"]).id == "c"
    assert jobs_repo.claim_next(postgres_url, "w").id == "a"  # oldest first
    assert jobs_repo.claim(postgres_url, "b", "w") is True  # claiming one job by id still works
    assert jobs_repo.claim(postgres_url, "b", "w2") is False


def test_concurrent_event_appends_get_contiguous_unique_numbers(postgres_url):
    jobs_repo.create_job(postgres_url, "j", "finetune", {}, "/j")
    per_thread = 25
    _run_threads(8, lambda t: [jobs_repo.append_event(postgres_url, "j", "train", {"t": t, "i": i})
                               for i in range(per_thread)])
    seqs = [e.seq for e in jobs_repo.list_events(postgres_url, "j")]
    assert seqs == list(range(1, 8 * per_thread + 1))
    with db.get_engine(postgres_url).begin() as c:  # the database itself refuses a repeated number
        with pytest.raises(sa.exc.IntegrityError):
            c.execute(sa.text("INSERT INTO job_events (job_id, seq, kind, data, created_at) "
                              "VALUES ('j', 3, 'x', '{}', now())"))


def test_concurrent_model_registrations_get_versions_one_to_eight(postgres_url):
    def register(i: int) -> int:
        version = models_repo.next_version(postgres_url, "shared-model")
        models_repo.add_version(postgres_url, ModelVersion(name="shared-model", version=version,
                                                           task="text-classification", path=f"/m/{i}"))
        return version

    versions = _run_threads(8, register)
    assert sorted(versions) == list(range(1, 9))
    stored = [v.version for v in models_repo.list_versions(postgres_url, name="shared-model")]
    assert sorted(stored) == list(range(1, 9))
    latest, total = models_repo.search_latest(postgres_url, search="shared-model")
    assert total == 1 and latest[0].version == 8  # the list's latest version, whatever the commit order


def test_model_list_filters_give_the_same_answers_on_postgresql_and_sqlite(postgres_url, tmp_path):
    sqlite_url = f"sqlite:///{tmp_path / 'x.db'}"
    rows = [("alpha", 1, "text-classification", "MIT", "first", "BertForSequenceClassification"),
            ("alpha", 2, "translation", "mit", "Second run", None),
            ("beta", 1, "text-classification", None, "a 100% literal_pattern", "T5ForConditionalGeneration"),
            ("gamma", 1, "summarization", "", "ümlaut Summaries", "BartForConditionalGeneration"),
            ("gamma", 3, "summarization", "Apache-2.0", "third", "BartForConditionalGeneration"),
            ("delta", 1, "text-classification", "apache-2.0", "x", "RobertaModel")]
    for url in (postgres_url, sqlite_url):
        for name, version, task, license, description, arch in rows:
            models_repo.add_version(url, ModelVersion(name=name, version=version, task=task, path="/p", license=license,
                                                      description=description,
                                                      lineage={"architecture": arch} if arch else {}))
        models_repo.update_metrics(url, "gamma", 3, {"rouge1": 0.3})  # an update keeps the latest row

    def answers(url):
        out = {}
        for filters in ({}, {"task": "text-classification"}, {"license": "MIT"}, {"license": "unknown"},
                        {"search": "BERT"}, {"search": "unknown"}, {"search": "100%"}, {"search": "l_p"},
                        {"search": "sum"}, {"license": "apache-2.0", "search": "o"}, {"task": "translation"}):
            found, total = models_repo.search_latest(url, limit=2, **filters)
            out[str(filters)] = ([(v.name, v.version) for v in found], total,
                                 models_repo.count_latest_by(url, "license", **filters),
                                 models_repo.count_latest_by(url, "task", **filters))
        return out

    on_postgres = answers(postgres_url)
    assert on_postgres == answers(sqlite_url)
    assert on_postgres["{}"][:2] == ([("alpha", 2), ("beta", 1)], 4)
    assert on_postgres["{'license': 'unknown'}"][1] == 1  # beta: no license ('' at gamma 1 is not latest)
    assert on_postgres["{'search': 'unknown'}"][0] == [("alpha", 2)]  # no architecture recorded
    assert on_postgres["{'search': '100%'}"][0] == [("beta", 1)]  # % and _ are literal
    assert on_postgres["{}"][2] == {"mit": 1, "unknown": 1, "apache-2.0": 2}


def test_concurrent_data_asset_registrations_through_the_service(postgres_url, tmp_path, monkeypatch):
    from fmhub.config import reset_settings
    from fmhub.services.assets import register_data_file
    from fmhub.services.context import Context

    monkeypatch.setenv("FMHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FMHUB_DATABASE_URL", postgres_url)
    reset_settings()
    ctx = Context.from_settings()
    files = []
    for i in range(8):
        f = tmp_path / f"part{i}.csv"
        f.write_text(f"text,label\nrow {i},pos\nother {i},neg\n", encoding="utf-8")
        files.append(f)
    assets = _run_threads(8, lambda i: register_data_file(ctx, files[i], name="reviews"))
    reset_settings()
    assert sorted(a.version for a in assets) == list(range(1, 9))
    assert Counter(a.sha256 for a in assets_repo.list_assets(postgres_url, "reviews")).most_common(1)[0][1] == 1
    for a in assets:  # each version's own file, in its own place
        assert Path(a.path).read_text(encoding="utf-8").startswith("text,label\nrow ")


def test_versions_continue_above_rows_written_without_the_counter(postgres_url):
    models_repo.add_version(postgres_url, ModelVersion(name="old", version=4, task="translation", path="/p"))
    assert models_repo.next_version(postgres_url, "old") == 5
    assert models_repo.next_version(postgres_url, "old") == 6  # a reserved number is never handed out again


def _fmhub(env_url: str, *args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FMHUB_DATABASE_URL": env_url, "FMHUB_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "fmhub", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def test_a_server_refuses_an_older_schema_until_fmhub_db_upgrade(empty_postgres_url, tmp_path):
    url = empty_postgres_url
    engine = db.unchecked_engine(url)
    db.upgrade(engine, "0005")
    with engine.begin() as c:  # data written by the older schema, numbers repeated by the old race
        c.execute(sa.text("INSERT INTO jobs (id, kind, status, compute, spec, outputs, created_at, attempts, "
                          "resume, cancel_requested) VALUES ('old', 'finetune', 'completed', 'local', "
                          "'{\"a\": 1}', '{}', now(), 1, false, false)"))
        for seq in (1, 2, 2, 3):
            c.execute(sa.text("INSERT INTO job_events (job_id, seq, kind, data, created_at) "
                              "VALUES ('old', :s, 'train', '{}', now())"), {"s": seq})
    with pytest.raises(db.DatabaseError) as exc:
        db.get_engine(url)
    message = str(exc.value)
    shown = url.replace("postgresql+psycopg://fmhub:fmhub@", "postgresql://fmhub@")
    assert f"the database at {shown} is at schema revision 0005; this fmhub needs {db.head_revision()}: " \
           "run `fmhub db upgrade`" in message
    assert "fmhub:fmhub@" not in message  # the password is never shown

    home = tmp_path / "home"
    worker = _fmhub(url, "models", "list", "--registry", "workspace", home=home)
    assert worker.returncode == 1 and "run `fmhub db upgrade`" in worker.stderr
    from server_process import free_port

    for command in (("serve", "--port", str(free_port())), ("worker",)):  # refused in one line, before start-up
        refused = _fmhub(url, *command, home=home)
        assert refused.returncode == 1 and refused.stderr.startswith("error: the database at "), refused.stderr
        assert "Traceback" not in refused.stderr and "run `fmhub db upgrade`" in refused.stderr

    current = _fmhub(url, "db", "current", home=home)
    assert current.returncode == 1 and "current:  0005" in current.stdout
    upgraded = _fmhub(url, "db", "upgrade", home=home)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"upgraded from schema revision 0005 to {db.head_revision()}" in upgraded.stdout

    db.dispose_all()
    assert db.get_engine(url) is not None
    assert [e.seq for e in jobs_repo.list_events(url, "old")] == [1, 2, 3, 4]  # renumbered in write order
    assert jobs_repo.append_event(url, "old", "train", {}) == 5
    assert jobs_repo.get_job(url, "old").spec == {"a": 1}


def test_fmhub_db_upgrade_creates_an_empty_database(empty_postgres_url, tmp_path):
    url = empty_postgres_url
    with pytest.raises(db.DatabaseError) as exc:
        db.get_engine(url)
    assert "has no fmhub tables" in str(exc.value) and "run `fmhub db upgrade`" in str(exc.value)
    assert "creates the tables of an empty database" in exc.value.hint

    done = _fmhub(url, "db", "upgrade", "--json", home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert '"before": null' in done.stdout and f'"after": "{db.head_revision()}"' in done.stdout
    again = _fmhub(url, "db", "upgrade", home=tmp_path / "home")
    assert again.returncode == 0 and "already at schema revision" in again.stdout
    current = _fmhub(url, "db", "current", home=tmp_path / "home")
    assert current.returncode == 0 and f"head:     {db.head_revision()}" in current.stdout

    db.dispose_all()
    names = set(sa.inspect(db.get_engine(url)).get_table_names())
    assert {"model_versions", "data_assets", "jobs", "job_events", "version_counters", "alembic_version"} <= names


def test_unreachable_database_is_one_clear_error(tmp_path):
    url = "postgresql+psycopg://fmhub:secret@127.0.0.1:9/nothing"  # port 9: nothing listens there
    with pytest.raises(db.DatabaseError) as exc:
        db.get_engine(url)
    assert "cannot connect to the database at postgresql://fmhub@127.0.0.1:9/nothing" in str(exc.value)
    assert "secret" not in str(exc.value)


def test_deployment_backend_and_replica_bounds_round_trip(postgres_url):
    from fmhub.entities import Deployment
    from fmhub.store import endpoints_repo

    endpoints_repo.create_endpoint(postgres_url, "ep", "", "k1", "k2")
    endpoints_repo.upsert_deployment(postgres_url, Deployment(endpoint="ep", name="green", model="m:1",
                                                              task="text-classification", backend="ray",
                                                              min_replicas=1, max_replicas=4))
    d = endpoints_repo.get_endpoint(postgres_url, "ep").deployments[0]
    assert (d.backend, d.min_replicas, d.max_replicas) == ("ray", 1, 4)
