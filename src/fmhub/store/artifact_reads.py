"""Reading from the artifact store: existence, opening, sizes and listings of files and folders by
URL, on a local folder or a bucket (the reading half of :class:`fmhub.store.artifacts.ArtifactStore`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from fmhub.store.bucket_cache import MANIFEST


class ArtifactReads:
    """The read methods of :class:`~fmhub.store.artifacts.ArtifactStore`; the store supplies
    ``fs`` (the bucket's filesystem), ``_key(url)`` (the bucket key) and ``_remote(url)``."""

    fs: Any

    @staticmethod
    def _key(url: str) -> str:
        raise NotImplementedError

    def _remote(self, url: str) -> bool:
        raise NotImplementedError

    def exists(self, url: str) -> bool:
        """True when file or complete folder ``url`` exists (a bucket folder needs its manifest)."""
        if not self._remote(url):
            return Path(url).exists()
        key = self._key(url)
        return self.fs.isfile(key) or self.fs.isfile(f"{key}/{MANIFEST}")

    def is_dir(self, url: str) -> bool:
        """True when ``url`` is a folder (in a bucket: a complete one, with its manifest)."""
        if not self._remote(url):
            return Path(url).is_dir()
        return self.fs.isfile(f"{self._key(url)}/{MANIFEST}")

    @contextmanager
    def open(self, url: str, mode: str = "rb") -> Iterator[IO[Any]]:
        """Open file ``url`` for reading (``rb`` or ``r``).

        Raises:
            FileNotFoundError: no such file.
        """
        if not self._remote(url):
            with open(url, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
                yield f
            return
        with self.fs.open(self._key(url), mode) as f:
            yield f

    def read_bytes(self, url: str, offset: int = 0, length: int | None = None) -> bytes:
        """The bytes of file ``url`` from ``offset`` (``length`` bytes at most; all without).

        Raises:
            FileNotFoundError: no such file.
        """
        with self.open(url, "rb") as f:
            f.seek(offset)
            return f.read() if length is None else f.read(length)

    def size(self, url: str) -> int:
        """Size of file ``url`` in bytes.

        Raises:
            FileNotFoundError: no such file.
        """
        if not self._remote(url):
            return Path(url).stat().st_size
        return int(self.fs.info(self._key(url))["size"])

    def list(self, url: str, recursive: bool = False) -> list[str]:
        """Names under folder ``url``: direct entries (sorted), or every file's relative posix path
        with ``recursive``. A missing folder lists nothing; manifests are not listed."""
        if not self._remote(url):
            root = Path(url)
            if not root.is_dir():
                return []
            if recursive:
                return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
            return sorted(p.name for p in root.iterdir())
        key = self._key(url).rstrip("/")
        if recursive:
            names = [p[len(key) + 1:] for p in self.fs.find(key)]
        else:
            try:
                names = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(key, detail=False)]
            except FileNotFoundError:
                return []
        return sorted(n for n in names if n and n.rsplit("/", 1)[-1] != MANIFEST)


__all__ = ["ArtifactReads"]
