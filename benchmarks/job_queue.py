"""A shared database under load: the job queue and the model list on PostgreSQL (SQLite beside).

Usage::

    scripts/test-services.sh start && eval "$(scripts/test-services.sh env)"
    python benchmarks/job_queue.py [--jobs 10000] [--workers 4] [--models 100000] [--runs 25] [--json-out FILE]

Needs a PostgreSQL role that may create databases: ``--postgres-url`` (default
``FMHUB_TEST_POSTGRES_URL``, e.g. ``postgresql+psycopg://fmhub:fmhub@127.0.0.1:55432/fmhub``). The
benchmark works in a database of its own, created and migrated (``store.db.upgrade_url``) at the
start and dropped at the end.

1. Queue: ``--jobs`` queued no-op jobs (compute target ``bench-noop``, which nothing runs) inserted with ``store.jobs_repo.create_job``, then
   claimed by ``--workers`` worker processes started together, each looping
   ``jobs_repo.claim_next`` + ``jobs_repo.set_status(completed)`` until the queue is empty. Prints
   claims per second (jobs / wall time of the claiming) and double claims: job ids claimed by more
   than one worker, or recorded with more than one attempt, or left unfinished. Target: 0.
2. Model list: ``--models`` workspace model versions (the shape of ``benchmarks/api.py``: a mix of
   tasks and licenses, every tenth name with two versions, a lineage of a few hundred bytes)
   bulk-inserted into PostgreSQL and into a SQLite file, then ``services.models.page_models`` (what
   ``GET /api/v1/models`` runs: filter checks, the page and the total of the latest versions)
   timed ``--runs`` times per query after a warm-up. Target: every filtered query's median under
   50 ms on PostgreSQL; the SQLite median is printed beside it. Not held to it: the unfiltered list
   and a search every model matches (both count all 90,910 latest versions).

Exit code 0 (``PASS``) when both targets hold, 1 (``FAIL``) otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file's name is also the standard library's `queue` (which psycopg and multiprocessing
# import): drop its folder, which Python puts first on the path of a script, before importing them.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402

TARGET_MS = 50.0
# A job's kind is one of fmhub's; the no-op jobs are told apart by a compute target no runner serves.
NOOP_KIND = "import"
NOOP_COMPUTE = "bench-noop"
# (label, page_models filters, held to the target?)
QUERIES = [
    ("task", {"task": "text-classification"}, True),
    ("license", {"license": "apache-2.0"}, True),
    ("license=unknown", {"license": "unknown"}, True),
    ("search", {"search": "roberta"}, True),
    ("search rare", {"search": "conll-0001"}, True),
    ("license+search", {"license": "mit", "search": "roberta"}, True),
    ("task+search", {"task": "summarization", "search": "squad"}, True),
    ("workspace+task+offset", {"registry": "workspace", "task": "translation", "offset": 5000}, True),
    # Not held to the target: a count of every latest version, as the unfiltered list (the generated
    # lineages all record a BERT architecture, so "bert" matches every model).
    ("search matching all", {"search": "bert"}, False),
    ("unfiltered", {}, False),
]


# ---------------------------------------------------------------------------------------------- queue


def _claimer(url: str, worker: str, ready, start, results) -> None:
    """A worker process: claim and complete no-op jobs until none is left; report the ids."""
    from fmhub.entities import JobStatus
    from fmhub.store import jobs_repo
    from fmhub.store.db import get_engine

    get_engine(url)  # connect before the clock starts
    ready.set()
    start.wait(timeout=120)
    claimed = []
    t0 = time.perf_counter()
    while (job := jobs_repo.claim_next(url, worker, kinds=[NOOP_KIND], computes=[NOOP_COMPUTE])) is not None:
        claimed.append(job.id)
        jobs_repo.set_status(url, job.id, JobStatus.completed)
    results.put((worker, claimed, time.perf_counter() - t0))


def bench_queue(url: str, n_jobs: int, n_workers: int) -> dict:
    """Fill the queue, claim it with ``n_workers`` processes; claims/s and double claims."""
    from sqlalchemy import func, select

    from fmhub.store import jobs_repo
    from fmhub.store.db import session_scope
    from fmhub.store.tables import JobRow

    t0 = time.perf_counter()
    for i in range(n_jobs):
        jobs_repo.create_job(url, f"noop{i:06d}", NOOP_KIND, {"n": i}, f"/nowhere/noop{i:06d}",
                             compute=NOOP_COMPUTE)
    fill_s = time.perf_counter() - t0
    print(f"queue: {n_jobs} queued jobs inserted with jobs_repo.create_job in {fill_s:.1f} s", flush=True)

    spawn = mp.get_context("spawn")
    start, results = spawn.Event(), spawn.Queue()
    readies = [spawn.Event() for _ in range(n_workers)]
    procs = [spawn.Process(target=_claimer, args=(url, f"bench:{w}", readies[w], start, results))
             for w in range(n_workers)]
    for p in procs:
        p.start()
    for r in readies:
        if not r.wait(timeout=120):
            raise SystemExit("a worker process did not start within 120 s")
    t0 = time.perf_counter()
    start.set()
    per_worker = [results.get(timeout=1800) for _ in procs]
    wall_s = time.perf_counter() - t0
    for p in procs:
        p.join(timeout=60)

    counts = Counter(job_id for _, claimed, _ in per_worker for job_id in claimed)
    claimed_twice = sum(1 for n in counts.values() if n > 1)
    with session_scope(url) as s:
        retried = s.scalar(select(func.count()).select_from(JobRow).where(JobRow.attempts != 1)) or 0
        unfinished = s.scalar(select(func.count()).select_from(JobRow).where(JobRow.status != "completed")) or 0
    double = claimed_twice + int(retried)
    result = {"jobs": n_jobs, "workers": n_workers, "claimed": sum(counts.values()), "distinct": len(counts),
              "wall_s": round(wall_s, 2), "claims_per_s": round(len(counts) / wall_s, 1),
              "double_claims": double, "unfinished": int(unfinished), "fill_s": round(fill_s, 1),
              "per_worker": {w: len(c) for w, c, _ in sorted(per_worker)}}
    print(f"queue: {result['distinct']} jobs claimed and completed by {n_workers} worker processes in "
          f"{wall_s:.2f} s: {result['claims_per_s']:.0f} claims/s; double claims {double}; unfinished "
          f"{unfinished}; per worker {result['per_worker']}", flush=True)
    return result


# ----------------------------------------------------------------------------------------- model list


def _fill_models(url: str, home: Path, n_models: int) -> tuple[int, int]:
    spec = importlib.util.spec_from_file_location("fmhub_bench_api", _HERE / "api.py")
    api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(api)  # the model versions of benchmarks/api.py
    return api.fill(url, home, n_models)


def time_queries(url: str, home: Path, runs: int) -> dict[str, dict]:
    """Median and slowest ``page_models`` time per query, in ms, and the totals."""
    from fmhub.config import Settings
    from fmhub.services.context import Context
    from fmhub.services.models import page_models

    ctx = Context.from_settings(Settings(home=home, database_url=url))
    out = {}
    for label, filters, _held in QUERIES:
        for _ in range(3):
            page_models(ctx, limit=50, **filters)
        times = []
        total = 0
        for _ in range(runs):
            t = time.perf_counter()
            items, total = page_models(ctx, limit=50, **filters)
            times.append((time.perf_counter() - t) * 1000)
        out[label] = {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2),
                      "total": total, "items": len(items)}
    return out


def bench_model_list(pg_url: str, tmp: Path, n_models: int, runs: int) -> dict:
    """The model list over ``n_models`` versions on PostgreSQL and on SQLite."""
    from fmhub.store.db import dispose_all

    figures = {}
    for backend, url in (("postgresql", pg_url), ("sqlite", f"sqlite:///{(tmp / 'sqlite' / 'fmhub.db').as_posix()}")):
        home = tmp / backend
        home.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        rows, names = _fill_models(url, home, n_models)
        if backend == "postgresql":
            from sqlalchemy import text

            from fmhub.store.db import get_engine

            # What autovacuum does after a bulk insert: statistics and the visibility map.
            with get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE"))
        print(f"model list: {rows} model versions ({names} names) into {backend} in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        figures[backend] = time_queries(url, home, runs)
        dispose_all()
    print(f"\n{'query':24s} {'postgresql median':>18s} {'(max)':>9s} {'sqlite median':>14s} {'total':>7s}  target")
    for label, _filters, held in QUERIES:
        pg, lite = figures["postgresql"][label], figures["sqlite"][label]
        mark = ("ok" if pg["median_ms"] < TARGET_MS else "MISSED") if held else "-"
        print(f"{label:24s} {pg['median_ms']:15.2f} ms {pg['max_ms']:6.1f} ms {lite['median_ms']:11.2f} ms "
              f"{pg['total']:7d}  {mark}")
        if pg["total"] != lite["total"]:
            print(f"  totals differ: postgresql {pg['total']}, sqlite {lite['total']}")
    return figures


# ----------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get("FMHUB_TEST_POSTGRES_URL", ""),
                        help="A PostgreSQL URL whose role may create databases (default FMHUB_TEST_POSTGRES_URL).")
    parser.add_argument("--jobs", type=int, default=10_000, help="Queued no-op jobs.")
    parser.add_argument("--workers", type=int, default=4, help="Claiming worker processes.")
    parser.add_argument("--models", type=int, default=100_000, help="Workspace model versions.")
    parser.add_argument("--runs", type=int, default=25, help="Timed runs per model-list query.")
    parser.add_argument("--skip", choices=["queue", "models"], help="Leave one part out.")
    parser.add_argument("--json-out", type=Path, help="Write the results as one JSON document.")
    args = parser.parse_args()
    if not args.postgres_url:
        parser.error("no PostgreSQL: pass --postgres-url or start scripts/test-services.sh and "
                     'eval "$(scripts/test-services.sh env)"')
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from fmhub.store.db import dispose_all, normalise_url, upgrade_url

    admin = sa.create_engine(normalise_url(args.postgres_url), isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)
    database = f"fmhub_bench_{uuid.uuid4().hex[:12]}"
    url = make_url(normalise_url(args.postgres_url)).set(database=database).render_as_string(hide_password=False)
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {database}"))
    results: dict = {"target_ms": TARGET_MS}
    try:
        upgrade_url(url)
        with tempfile.TemporaryDirectory(prefix="fmhub-bench-queue-") as tmp:
            if args.skip != "queue":
                results["queue"] = bench_queue(url, args.jobs, args.workers)
            if args.skip != "models":
                results["model_list"] = bench_model_list(url, Path(tmp), args.models, args.runs)
    finally:
        dispose_all()
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        admin.dispose()

    failures = []
    if "queue" in results:
        q = results["queue"]
        if q["double_claims"] or q["unfinished"] or q["distinct"] != q["jobs"]:
            failures.append(f"queue: {q['double_claims']} double claims, {q['unfinished']} unfinished, "
                            f"{q['distinct']} of {q['jobs']} claimed")
    if "model_list" in results:
        for label, _filters, held in QUERIES:
            median = results["model_list"]["postgresql"][label]["median_ms"]
            if held and median >= TARGET_MS:
                failures.append(f"model list '{label}': median {median:.1f} ms >= {TARGET_MS:.0f} ms on PostgreSQL")
    results["failures"] = failures
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("\n" + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
