"""What every use case needs: settings, the database URL and the artifact store."""

from __future__ import annotations

from dataclasses import dataclass

from fmhub.config import Settings, get_settings
from fmhub.services.data_roots import DataRoots
from fmhub.store.artifacts import ArtifactStore


@dataclass
class Context:
    """The state a service call works on.

    Attributes:
        settings: Paths and URLs (``FMHUB_HOME``, ``FMHUB_DATABASE_URL``).
        db_url: The database URL in force.
        artifacts: The artifact store (``FMHUB_ARTIFACTS_URL``, default ``FMHUB_HOME/artifacts``).
        data_roots: The folders a server reads user files from (set by ``fmhub serve`` and
            :func:`fmhub.api.app.create_app`); None for the local CLI, which reads what its user
            names.
    """

    settings: Settings
    db_url: str
    artifacts: ArtifactStore
    data_roots: DataRoots | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "Context":
        """Build a context from ``settings`` (default: the environment)."""
        s = settings or get_settings()
        s.home.mkdir(parents=True, exist_ok=True)
        store = ArtifactStore(s.artifacts_location, cache_root=s.artifacts_cache_dir, scratch_root=s.artifacts_dir)
        return cls(settings=s, db_url=s.db_url, artifacts=store)
