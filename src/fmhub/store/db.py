"""Database engine, sessions and migrations (SQLite by default, PostgreSQL by setting).

SQLite migrates itself to the latest schema on first use. A shared database (any other URL, e.g.
``postgresql+psycopg://user:password@host/db``) is migrated only by ``fmhub db upgrade``
(:func:`upgrade_url`): :func:`get_engine` refuses one whose schema is not the one this fmhub needs,
so that a server or worker never runs against tables it does not know, and never migrates a database
other servers are using.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from fmhub.errors import FmhubError

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_ready: set[str] = set()
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Connection pool of a shared database, per process: a server's request threads, its scheduler and
# its job bookkeeping. Connections are checked before use (``pool_pre_ping``), so a database restart
# costs one retry, not a failed request; they are renewed after half an hour.
POOL_SIZE = 5
POOL_MAX_OVERFLOW = 10
POOL_RECYCLE_S = 1800
CONNECT_TIMEOUT_S = 10
# Serialises concurrent `fmhub db upgrade` runs on one PostgreSQL database (an arbitrary constant).
_UPGRADE_LOCK_ID = 0x666D687562


class DatabaseError(FmhubError):
    """The database cannot be used: unreachable, its driver missing, or its schema not this fmhub's."""

    code = "database_unavailable"
    http_status = 503


def normalise_url(url: str) -> str:
    """``url`` with PostgreSQL's driver made explicit: ``postgresql://`` -> ``postgresql+psycopg://``
    (SQLAlchemy's default PostgreSQL driver, psycopg2, is not the one fmhub installs)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def display_url(url: str) -> str:
    """``url`` without its password, driver and query (which may hold a ``password=`` too), to show
    in messages: ``postgresql://user@host:5432/db``; a SQLite URL unchanged."""
    try:
        u = make_url(url)
    except Exception:  # not a URL SQLAlchemy understands: show nothing of it that could be secret
        return "(unparsable database URL)"
    if u.get_backend_name() == "sqlite":
        return url
    return u._replace(drivername=u.get_backend_name(), password=None, query={}).render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    """Whether ``url`` is a SQLite database (migrated on first use)."""
    return normalise_url(url).startswith("sqlite")


def _engine(url: str) -> Engine:
    """The cached engine for ``url``, without any schema check (caller holds ``_lock``)."""
    engine = _engines.get(url)
    if engine is not None:
        return engine
    real = normalise_url(url)
    if real.startswith("sqlite:///"):
        Path(real.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        if is_sqlite(real):
            engine = create_engine(real, future=True)
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            connect_args = {"connect_timeout": CONNECT_TIMEOUT_S} if real.startswith("postgresql") else {}
            engine = create_engine(real, future=True, pool_pre_ping=True, pool_size=POOL_SIZE,
                                   max_overflow=POOL_MAX_OVERFLOW, pool_recycle=POOL_RECYCLE_S,
                                   connect_args=connect_args)
    except ModuleNotFoundError as exc:
        raise DatabaseError(f"cannot open the database at {display_url(url)}: its driver is not installed "
                            f"({exc.name})",
                            hint="install the PostgreSQL extra: pip install 'fmhub[postgres]'"
                            if make_url(real).get_backend_name() == "postgresql" else
                            "fmhub runs on SQLite (the default) or PostgreSQL "
                            "(FMHUB_DATABASE_URL=postgresql+psycopg://USER:PASSWORD@HOST:5432/DB)") from None
    except Exception as exc:
        raise DatabaseError(f"FMHUB_DATABASE_URL is not a database URL fmhub can open: {exc}",
                            hint="e.g. postgresql+psycopg://USER:PASSWORD@HOST:5432/DB or "
                                 "sqlite:////path/to/fmhub.db") from None
    _engines[url] = engine
    return engine


def unchecked_engine(url: str) -> Engine:
    """The cached engine for ``url`` without migrating or checking its schema (``fmhub db``, tests).

    Raises:
        DatabaseError: the URL cannot be opened or its driver is not installed.
    """
    with _lock:
        return _engine(url)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def get_engine(url: str) -> Engine:
    """Return the (cached) engine for ``url``, its schema at the latest revision.

    SQLite: the folder is created and the schema migrated to head here. Any other database (shared
    by several servers and workers) is only checked: ``fmhub db upgrade`` migrates it.

    Args:
        url: A SQLAlchemy database URL, e.g. ``sqlite:///home/.fmhub/fmhub.db`` or
            ``postgresql+psycopg://user:password@host:5432/fmhub`` (``postgresql://`` means psycopg 3).

    Returns:
        An engine whose schema is at the latest Alembic revision.

    Raises:
        DatabaseError: a shared database is unreachable, empty, or at another schema revision than
            this fmhub's (the message says which and that ``fmhub db upgrade`` migrates it), or its
            driver is not installed.
    """
    with _lock:
        engine = _engine(url)
        if url not in _ready:
            if is_sqlite(url):
                upgrade(engine)
            else:
                _check_schema(url, engine)
            _ready.add(url)
        return engine


def _connect_error(url: str, exc: Exception) -> DatabaseError:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return DatabaseError(f"cannot connect to the database at {display_url(url)}: {reason}",
                         hint="check FMHUB_DATABASE_URL (host, port, user, password, database) and that the "
                              "database server is running")


def _check_schema(url: str, engine: Engine) -> None:
    """Raise :class:`DatabaseError` unless the database is at this fmhub's head revision."""
    try:
        current = current_revision(engine)
    except Exception as exc:  # connection refused, authentication, unknown database
        raise _connect_error(url, exc) from None
    head = head_revision()
    if current == head:
        return
    where = f"the database at {display_url(url)}"
    if current is None:
        raise DatabaseError(f"{where} has no fmhub tables (no schema revision); this fmhub needs {head}: "
                            "run `fmhub db upgrade`",
                            hint="`fmhub db upgrade` creates the tables of an empty database; servers and workers "
                                 "never create or migrate a shared database themselves")
    if current not in known_revisions():
        raise DatabaseError(f"{where} is at schema revision {current}, which this fmhub does not know (a newer "
                            f"fmhub upgraded it); this fmhub needs {head}",
                            hint="run the fmhub version that upgraded the database on every server and worker")
    raise DatabaseError(f"{where} is at schema revision {current}; this fmhub needs {head}: run `fmhub db upgrade`",
                        hint="stop the servers and workers of the older fmhub first; "
                             "`fmhub db current` shows both revisions")


def _alembic_config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The latest schema revision this fmhub knows (e.g. ``0006``)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    """Every schema revision of this fmhub's migrations."""
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database; None for a database without fmhub tables."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run ``alembic upgrade <revision>`` on ``engine`` (idempotent; concurrent runs on PostgreSQL
    wait for each other).

    Args:
        engine: The database.
        revision: The target revision (default: the latest).
    """
    from alembic import command

    cfg = _alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _UPGRADE_LOCK_ID})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def schema_status(url: str) -> dict[str, str | None]:
    """Where the database's schema stands (``fmhub db current``).

    Returns:
        ``{"url": shown URL (no password), "current": revision or None (empty database), "head": this
        fmhub's revision}``.

    Raises:
        DatabaseError: the database cannot be reached.
    """
    engine = unchecked_engine(url)
    try:
        current = current_revision(engine)
    except Exception as exc:
        raise _connect_error(url, exc) from None
    return {"url": display_url(url), "current": current, "head": head_revision()}


def upgrade_url(url: str) -> dict[str, str | None]:
    """Migrate the database at ``url`` to this fmhub's schema, creating the tables of an empty one
    (``fmhub db upgrade``). Safe to run again, and from two places at once.

    Returns:
        ``{"url": shown URL, "before": revision or None, "after": head}``.

    Raises:
        DatabaseError: the database cannot be reached, or is at a revision this fmhub does not know.
    """
    before = schema_status(url)["current"]
    if before is not None and before not in known_revisions():
        raise DatabaseError(f"the database at {display_url(url)} is at schema revision {before}, which this "
                            "fmhub does not know (a newer fmhub upgraded it)",
                            hint="upgrade fmhub instead: it cannot migrate a database back")
    with _lock:
        engine = _engine(url)
        upgrade(engine)
        _ready.add(url)
    return {"url": display_url(url), "before": before, "after": head_revision()}


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A transaction: commits on success, rolls back on any exception.

    Args:
        url: The database URL (see :func:`get_engine`).
    """
    factory = sessionmaker(bind=get_engine(url), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dialect_name(url: str) -> str:
    """``sqlite``, ``postgresql``... for the engine of ``url``."""
    return get_engine(url).dialect.name


def dispose_all() -> None:
    """Close every cached engine (tests, and before a process forks)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _ready.clear()
