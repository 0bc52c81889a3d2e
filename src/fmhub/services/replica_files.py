"""Model files for replicas on other machines: a model version's artifact URL turned into a local
folder on the node that loads it, through the artifact store's download cache."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoreFiles:
    """Resolves artifact URLs of the store at ``store_url`` on the machine it is called on (it is
    sent to Ray Serve replicas with their deployment).

    Attributes:
        store_url: The artifact store (``s3://bucket/prefix``); the node's credentials and endpoint
            come from its environment (``AWS_*``), its cache from its ``FMHUB_HOME``
            (``<home>/cache/artifacts``).
    """

    store_url: str

    def __call__(self, url: str) -> str:
        """The local folder holding the files of ``url`` (downloaded once per node).

        Raises:
            ArtifactStoreError: ``url`` is not in the store, or the bucket cannot be reached.
        """
        from fmhub.config import Settings
        from fmhub.store.artifacts import ArtifactStore

        settings = Settings()
        store = ArtifactStore(self.store_url, cache_root=settings.artifacts_cache_dir,
                              scratch_root=settings.artifacts_dir)
        return str(store.local_path(url))


__all__ = ["StoreFiles"]
