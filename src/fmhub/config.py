"""Settings read from the environment (``FMHUB_*``) with documented defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where fmhub keeps its state.

    Attributes:
        home: ``FMHUB_HOME``; holds ``fmhub.db`` (SQLite) and ``artifacts/``. Default ``~/.fmhub``.
        database_url: ``FMHUB_DATABASE_URL``; a SQLAlchemy URL. Default: SQLite file under ``home``.
        ray_address: ``FMHUB_RAY_ADDRESS``; a Ray cluster address for the ``ray`` compute target.
        offline: ``FMHUB_OFFLINE``; when true the hub is never contacted. Default: true when
            ``HF_HUB_OFFLINE`` is set, else false (a failed hub download is still reported clearly).
        data_roots: ``FMHUB_DATA_ROOTS``; the folders the server (``fmhub serve``) reads user files
            from, separated by ``os.pathsep`` (``:`` on Linux). Default: the folder the server was
            started from. The upload area and the artifact store are always roots. The local CLI
            ignores it: it reads the files its user names.
        artifacts_url: ``FMHUB_ARTIFACTS_URL``; where model versions, data assets and (for a
            bucket) job folders are stored: a local folder (``file://`` allowed) or an
            S3-compatible bucket ``s3://bucket/prefix`` (extra ``fmhub[s3]``; endpoint and
            credentials from ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``,
            ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``). Default: ``<home>/artifacts``.
    """

    model_config = SettingsConfigDict(env_prefix="FMHUB_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".fmhub")
    database_url: str | None = None
    ray_address: str | None = None
    offline: bool = False
    data_roots: str | None = None
    artifacts_url: str | None = None

    @property
    def artifacts_dir(self) -> Path:
        """Root of the artifact store: ``<home>/artifacts``."""
        return self.home / "artifacts"

    @property
    def artifacts_location(self) -> str:
        """The artifact store in force: ``artifacts_url`` or the folder ``<home>/artifacts``."""
        return self.artifacts_url or str(self.artifacts_dir)

    @property
    def artifacts_cache_dir(self) -> Path:
        """Local copies of artifacts read from a bucket, by content hash: ``<home>/cache/artifacts``."""
        return self.home / "cache" / "artifacts"

    @property
    def uploads_dir(self) -> Path:
        """Where the server keeps uploaded files while it registers them: ``<home>/uploads``."""
        return self.home / "uploads"

    @property
    def jobs_dir(self) -> Path:
        """Per-job folders (log, progress events, checkpoints): ``<home>/jobs``."""
        return self.home / "jobs"

    @property
    def db_url(self) -> str:
        """The database URL in force: ``database_url`` or ``sqlite:///<home>/fmhub.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'fmhub.db').as_posix()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once from the environment)."""
    settings = Settings()
    settings.home = settings.home.expanduser()
    return settings


def reset_settings() -> None:
    """Forget cached settings so the next :func:`get_settings` re-reads the environment (tests)."""
    get_settings.cache_clear()
