"""Fixtures of the shared backend: PostgreSQL (and an S3-compatible artifact store) on 127.0.0.1.

The services come from ``scripts/test-services.sh start``; ``eval "$(scripts/test-services.sh env)"``
sets the variables read here:

- ``FMHUB_TEST_POSTGRES_URL``: a role allowed to create databases, e.g.
  ``postgresql+psycopg://fmhub:fmhub@127.0.0.1:55432/fmhub``;
- ``FMHUB_TEST_S3_ENDPOINT_URL``: the S3 server, e.g. ``http://127.0.0.1:55433``.

``FMHUB_TEST_BACKEND=shared`` runs every test on its own fresh PostgreSQL database (cloned from one
migrated by ``store.db.upgrade_url`` at the start of the session) and, while ``SHARED_ARTIFACTS`` is
True, its own prefix of an S3 bucket; servers started by the tests inherit both. Tests marked
``postgres`` use the database fixtures below in any mode. Without the services these tests are
skipped, saying how to start them; with ``FMHUB_REQUIRE_SERVICES=1`` (CI) they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

SHARED = os.environ.get("FMHUB_TEST_BACKEND", "") == "shared"
# Switch the S3 artifact store of the shared backend on or off (the database stays PostgreSQL).
SHARED_ARTIFACTS = True
POSTGRES_URL = os.environ.get("FMHUB_TEST_POSTGRES_URL", "")
S3_ENDPOINT_URL = os.environ.get("FMHUB_TEST_S3_ENDPOINT_URL", "")
S3_BUCKET = "fmhub-test"
REQUIRE_SERVICES = os.environ.get("FMHUB_REQUIRE_SERVICES", "") == "1"
HOW_TO_START = ('start them with `scripts/test-services.sh start` and `eval "$(scripts/test-services.sh env)"` '
                "(needs PostgreSQL and moto[server])")


def _missing(reason: str) -> None:
    """Fail (CI: FMHUB_REQUIRE_SERVICES=1) or skip a test that needs a service that is not there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (FMHUB_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(f"{reason}: {HOW_TO_START}")


def _admin_engine():
    import sqlalchemy as sa

    return sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool,
                            connect_args={"connect_timeout": 5})


class PostgresDatabases:
    """Creates and drops throwaway databases on the test PostgreSQL server.

    Each fresh database is a copy of a template migrated once per session, so a test pays a
    ``CREATE DATABASE`` (tens of ms), not the migrations.
    """

    def __init__(self) -> None:
        from sqlalchemy.engine import make_url

        self.admin = _admin_engine()
        self.base = make_url(POSTGRES_URL)
        self.template = f"fmhub_tmpl_{uuid.uuid4().hex[:12]}"
        self._template_ready = False

    def url(self, name: str) -> str:
        """The URL of database ``name`` (same server, role and password)."""
        return self.base.set(database=name).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        import sqlalchemy as sa

        with self.admin.connect() as c:
            c.execute(sa.text(sql))

    def create(self, migrated: bool = True) -> str:
        """A new database: at the latest schema (``migrated``) or empty. Returns its URL."""
        name = f"fmhub_t_{uuid.uuid4().hex[:16]}"
        if migrated:
            if not self._template_ready:
                from fmhub.store import db

                self._execute(f"CREATE DATABASE {self.template}")
                db.upgrade_url(self.url(self.template))
                db.dispose_all()  # a template must have no open connections while it is copied
                self._template_ready = True
            self._execute(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        else:
            self._execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drop the database of ``url``, ending any connection to it (a server a test left running)."""
        from sqlalchemy.engine import make_url

        self._execute(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")

    def close(self) -> None:
        """Drop the template."""
        if self._template_ready:
            self._execute(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)")
        self.admin.dispose()


_postgres_problem: list[str | None] = []


def postgres_problem() -> str | None:
    """None when the test PostgreSQL server answers, else why not (checked once per session)."""
    if not _postgres_problem:
        if not POSTGRES_URL:
            _postgres_problem.append("no test PostgreSQL server: FMHUB_TEST_POSTGRES_URL is not set")
        else:
            try:
                import sqlalchemy as sa

                with _admin_engine().connect() as c:
                    c.execute(sa.text("SELECT 1"))
                _postgres_problem.append(None)
            except Exception as exc:  # reported as the skip reason
                first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
                _postgres_problem.append(f"the test PostgreSQL server at {POSTGRES_URL.split('@')[-1]} "
                                         f"does not answer ({first})")
    return _postgres_problem[0]


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """The database factory on the test PostgreSQL server (skipped, or failed in CI, without it)."""
    problem = postgres_problem()
    if problem:
        _missing(problem)
    databases = PostgresDatabases()
    yield databases
    from fmhub.store import db

    db.dispose_all()
    databases.close()


def _throwaway(postgres_databases, migrated: bool) -> Iterator[str]:
    url = postgres_databases.create(migrated=migrated)
    yield url
    from fmhub.store import db

    db.dispose_all()
    postgres_databases.drop(url)


@pytest.fixture()
def postgres_url(postgres_databases) -> Iterator[str]:
    """A fresh PostgreSQL database at the latest schema, dropped after the test."""
    yield from _throwaway(postgres_databases, migrated=True)


@pytest.fixture()
def empty_postgres_url(postgres_databases) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (no tables), dropped after the test."""
    yield from _throwaway(postgres_databases, migrated=False)


_bucket_ready: list[bool] = []


def use_shared_artifacts(monkeypatch) -> str:
    """Point the test (and the servers it starts) at its own prefix of the test S3 bucket.

    Sets ``FMHUB_ARTIFACTS_URL=s3://fmhub-test/<uuid>`` and the AWS variables of the local S3
    server; creates the bucket once per session. Returns the artifacts URL.
    """
    if not S3_ENDPOINT_URL:
        _missing("no test S3 server: FMHUB_TEST_S3_ENDPOINT_URL is not set")
    env = {"AWS_ENDPOINT_URL": S3_ENDPOINT_URL, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    if not _bucket_ready:
        try:
            import boto3

            s3 = boto3.client("s3", endpoint_url=S3_ENDPOINT_URL, aws_access_key_id="testing",
                              aws_secret_access_key="testing", region_name="us-east-1")
            if S3_BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
                s3.create_bucket(Bucket=S3_BUCKET)
        except Exception as exc:  # reported as the skip / failure reason
            _missing(f"the test S3 server at {S3_ENDPOINT_URL} does not answer ({type(exc).__name__}: {exc})")
        _bucket_ready.append(True)
    url = f"s3://{S3_BUCKET}/{uuid.uuid4().hex}"
    monkeypatch.setenv("FMHUB_ARTIFACTS_URL", url)
    return url


@pytest.fixture(autouse=True)
def shared_backend(request, monkeypatch) -> Iterator[None]:
    """With ``FMHUB_TEST_BACKEND=shared``: the test's own PostgreSQL database (and S3 prefix) in
    ``FMHUB_DATABASE_URL`` (``FMHUB_ARTIFACTS_URL``); nothing otherwise."""
    if not SHARED:
        yield
        return
    from fmhub.config import reset_settings

    url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("FMHUB_DATABASE_URL", url)
    if SHARED_ARTIFACTS:
        use_shared_artifacts(monkeypatch)
    reset_settings()
    yield
    reset_settings()
