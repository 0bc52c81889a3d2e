"""The artifact store: model version folders, data asset files and job folders, by URL.

The store is a local folder (default ``FMHUB_HOME/artifacts``, also written ``file:///...``) or an
S3-compatible bucket (``s3://bucket/prefix``, through fsspec + s3fs: ``pip install 'fmhub[s3]'``).
Artifacts are named by URL: a plain path for the local folder (what a model version or data asset
row has always recorded), ``s3://bucket/prefix/models/NAME/V`` for a bucket.

Layout under the root: ``models/<name>/<version>/`` (a Hugging Face folder), ``data/<name>/<version>/
<file>`` (a data asset's copy), ``jobs/<id>/`` (a job's log, events, checkpoints and outputs; a
bucket only: a local store's job folders are ``FMHUB_HOME/jobs``).

Atomic placement: locally a temporary sibling is renamed into place. In a bucket a file is one
object (an upload is atomic), and a folder is complete once its manifest
(``.fmhub-manifest.json``: every file's size and sha256) is written, which happens last.

Reading from a bucket: :meth:`ArtifactStore.local_path` downloads a file or folder once into a
local cache keyed by its content hash (``FMHUB_HOME/cache/artifacts/<sha256>``).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from fmhub.store import bucket_sync
from fmhub.store.artifact_reads import ArtifactReads
from fmhub.store.bucket_cache import MANIFEST, ArtifactStoreError, BucketCache, folder_manifest, manifest_bytes
from fmhub.store.bucket_errors import CLIENT_CONFIG, GuardedFS

__all__ = ["MANIFEST", "ArtifactStore", "ArtifactStoreError", "folder_manifest", "is_remote_url"]


def is_remote_url(value: str) -> bool:
    """True when ``value`` is a URL with a scheme other than ``file`` (``s3://...``)."""
    scheme, sep, _ = str(value).partition("://")
    return bool(sep) and scheme.lower() != "file" and len(scheme) > 1


class ArtifactStore(ArtifactReads):
    """Artifacts under a URL: put, read, list, delete, and local copies of remote artifacts.

    Args:
        url: A local folder (``Path`` or ``str``, ``file://`` allowed) or ``s3://bucket/prefix``.
        cache_root: Where remote artifacts are downloaded to (default ``<url>/../cache/artifacts``
            for a local store, which never uses it; pass ``FMHUB_HOME/cache/artifacts``).
        scratch_root: Local scratch space for staging and derived caches (default: the local
            store's root; for a bucket, pass ``FMHUB_HOME/artifacts``).
        storage_options: Extra fsspec options for a bucket (default: none; s3fs reads
            ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``,
            ``AWS_SECRET_ACCESS_KEY`` and ``AWS_DEFAULT_REGION`` itself; botocore's timeouts and
            retries default to :data:`fmhub.store.bucket_errors.CLIENT_CONFIG`).

    Raises:
        ArtifactStoreError: an unsupported URL scheme, or ``s3://`` without s3fs installed. Every
            method that reaches a bucket raises it for a missing bucket, refused credentials or an
            unreachable endpoint.
    """

    def __init__(self, url: str | Path, cache_root: Path | None = None, scratch_root: Path | None = None,
                 storage_options: dict[str, Any] | None = None) -> None:
        text = str(url)
        if text.startswith("file://"):
            text = text[len("file://"):]
        self.is_local = not is_remote_url(text)
        if self.is_local:
            self.root = Path(text).expanduser()
            self.url = str(self.root)
            self._fs: Any = None
        else:
            scheme = text.split("://", 1)[0].lower()
            if scheme not in ("s3", "s3a"):
                raise ArtifactStoreError(f"unsupported artifact store URL {text!r}",
                                         hint="set FMHUB_ARTIFACTS_URL to a folder or to s3://bucket/prefix")
            self.url = "s3://" + text.split("://", 1)[1].strip("/")
            self.root = Path(scratch_root) if scratch_root else Path.home() / ".fmhub" / "artifacts"
            self._storage_options = dict(storage_options or {})
            self._fs = None
        self.cache_root = Path(cache_root) if cache_root else self.root.parent / "cache" / "artifacts"

    # -- naming ------------------------------------------------------------------------------------

    def url_for(self, *parts: str) -> str:
        """The URL (a path for a local store) of ``parts`` under the root, e.g. ``models/x/1``."""
        if self.is_local:
            return str(self.root.joinpath(*parts))
        return "/".join([self.url, *(p.strip("/") for p in parts)])

    def model_url(self, name: str, version: int) -> str:
        """Where a workspace model version lives: ``<root>/models/<name>/<version>``."""
        return self.url_for("models", name, str(version))

    def data_url(self, name: str, version: int, filename: str) -> str:
        """Where a data asset's file lives: ``<root>/data/<name>/<version>/<filename>``."""
        return self.url_for("data", name, str(version), filename)

    def job_url(self, job_id: str, *parts: str) -> str:
        """A job's folder (or a file in it) in the store: ``<root>/jobs/<id>/...``."""
        return self.url_for("jobs", job_id, *parts)

    def model_dir(self, name: str, version: int) -> Path:
        """Local folder of a workspace model version: ``models/<name>/<version>`` (local store)."""
        return self.root / "models" / name / str(version)

    def data_dir(self, name: str, version: int) -> Path:
        """Local folder of a data asset version: ``data/<name>/<version>`` (local store)."""
        return self.root / "data" / name / str(version)

    def cache_dir(self, *parts: str) -> Path:
        """A local cache or staging folder (derived models, dequantised weights): ``cache/<parts...>``."""
        return self.root.joinpath("cache", *parts)

    def owns(self, url: str) -> bool:
        """True when ``url`` lies in this store (a bucket URL under its root)."""
        return not self.is_local and str(url).startswith(self.url + "/")

    # -- the bucket ----------------------------------------------------------------------------------

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of a bucket store (created on first use), wrapped so that a missing
        bucket, refused credentials or an unreachable endpoint raise :class:`ArtifactStoreError`
        (see :mod:`fmhub.store.bucket_errors`); a missing object stays ``FileNotFoundError``.

        Raises:
            ArtifactStoreError: a local store, or s3fs is not installed.
        """
        if self.is_local:
            raise ArtifactStoreError(f"the artifact store {self.url} is a local folder, not a bucket")
        if self._fs is None:
            try:
                import fsspec
                import s3fs  # noqa: F401 - fsspec's s3 protocol needs it
            except ImportError as exc:
                raise ArtifactStoreError("an s3:// artifact store needs s3fs",
                                         hint="install the extra: pip install 'fmhub[s3]'") from exc
            options = dict(self._storage_options)
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            if endpoint and "endpoint_url" not in options.get("client_kwargs", {}):
                options.setdefault("client_kwargs", {})["endpoint_url"] = endpoint
            options.setdefault("use_listings_cache", False)
            options.setdefault("skip_instance_cache", True)
            options["config_kwargs"] = {**CLIENT_CONFIG, **options.get("config_kwargs", {})}
            self._fs = GuardedFS(fsspec.filesystem("s3", **options), self.url)
        return self._fs

    def arrow_location(self, url: str) -> tuple[str, Any]:
        """``url`` of a bucket store as a path and a ``pyarrow.fs.FileSystem`` (for libraries that
        take those, e.g. Ray Train's storage). The filesystem pickles without credentials: each
        process that unpickles it finds its own (``AWS_*`` variables, an instance role).

        Raises:
            ArtifactStoreError: a local store, or s3fs is not installed.
        """
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        inner = getattr(self.fs, "_fs", self.fs)  # the bucket's own fsspec filesystem, not the guard
        return self._key(url), PyFileSystem(FSSpecHandler(inner))

    def check(self) -> None:
        """Make sure a bucket store can be used: list its prefix once (a local store: nothing to do).

        Raises:
            ArtifactStoreError: the bucket does not exist, the credentials are refused, or the
                endpoint cannot be reached (one line naming the ``s3://`` URL, with what to do).
        """
        if not self.is_local:
            self.fs.check(self._key(self.url))

    @staticmethod
    def _key(url: str) -> str:
        return str(url).split("://", 1)[1] if "://" in str(url) else str(url)

    def _remote(self, url: str) -> bool:
        return is_remote_url(str(url))

    # -- writing -------------------------------------------------------------------------------------

    def put_dir(self, src: Path, url: str, move: bool = False) -> str:
        """Copy (or, for a local store, move) folder ``src`` to ``url`` atomically; ``url`` must not exist.

        In a bucket the files are uploaded first and the manifest last (the folder counts as
        present once its manifest is there); a partial upload left by a crash is replaced.

        Returns:
            ``url``.

        Raises:
            FileExistsError: ``url`` exists already.
        """
        if not self._remote(url):
            return str(self.place_dir(Path(src), Path(url), move=move))
        if self.exists(url):
            raise FileExistsError(url)
        key = self._key(url)
        if self.fs.exists(key):
            self.fs.rm(key, recursive=True)  # files of an upload that never completed
        manifest = folder_manifest(Path(src))
        for rel in manifest["files"]:
            self.fs.put_file(str(Path(src) / rel), f"{key}/{rel}")
        self.fs.pipe_file(f"{key}/{MANIFEST}", manifest_bytes(manifest))
        return url

    def put_file(self, src: Path, url: str) -> str:
        """Copy file ``src`` to ``url`` atomically (a temporary file renamed, or one object upload).

        Returns:
            ``url``.
        """
        if not self._remote(url):
            return str(self.place_file(Path(src), Path(url)))
        self.fs.put_file(str(src), self._key(url))
        return url

    def write_bytes(self, url: str, data: bytes) -> None:
        """Write ``data`` as the whole of file ``url`` (atomically)."""
        if not self._remote(url):
            dest = Path(url)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.parent / f".tmp-{dest.name}-{uuid.uuid4().hex[:8]}"
            tmp.write_bytes(data)
            tmp.replace(dest)
            return
        self.fs.pipe_file(self._key(url), data)

    def place_dir(self, src: Path, dest: Path, move: bool = False) -> Path:
        """Copy (or move) folder ``src`` to the local folder ``dest`` atomically; ``dest`` must not exist.

        Raises:
            FileExistsError: when ``dest`` exists.
        """
        if dest.exists():
            raise FileExistsError(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".tmp-{dest.name}-{uuid.uuid4().hex[:8]}"
        try:
            if move:
                shutil.move(str(src), str(tmp))
            else:
                shutil.copytree(src, tmp)
            tmp.rename(dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest

    def place_file(self, src: Path, dest: Path) -> Path:
        """Copy file ``src`` to the local file ``dest`` atomically (temporary file, then rename)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".tmp-{dest.name}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copyfile(src, tmp)
            tmp.rename(dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return dest

    def delete(self, url: str) -> None:
        """Delete file or folder ``url`` (nothing happens when it does not exist)."""
        if not self._remote(url):
            path = Path(url)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            return
        key = self._key(url)
        if self.fs.isfile(f"{key}/{MANIFEST}"):
            self.fs.rm_file(f"{key}/{MANIFEST}")  # no longer complete before its files go
        if self.fs.exists(key):
            self.fs.rm(key, recursive=True)

    def local_path(self, url: str, sha256: str | None = None) -> Path:
        """A local file or folder with the content of ``url``, for reading.

        A local store's path is returned as is. From a bucket, the artifact is downloaded once into
        ``<cache_root>/<sha256>`` (a file keeps its name inside that folder) and later calls find it
        there. A folder's key is the sha256 of its manifest; a file's is ``sha256`` when given
        (a data asset records it), else the hash of its bytes, remembered per object ETag.

        Raises:
            ArtifactStoreError: ``url`` does not exist in the store, or a downloaded file does not
                match its recorded sha256.
        """
        if not self._remote(url):
            return Path(str(url)[len("file://"):] if str(url).startswith("file://") else url)
        key = self._key(url)
        if self.fs.isfile(f"{key}/{MANIFEST}"):
            return self._cache.folder(url, key)
        return self._cache.file(url, key, sha256)

    def local_files(self, url: str, names: tuple[str, ...] = ("config.json",)) -> Path:
        """A local folder holding at least the files ``names`` of folder ``url`` (those it has),
        for a look without the weights. A local store's folder is returned as is; from a bucket the
        files are downloaded once into ``<cache_root>/partial/<sha256 of the manifest>``.

        Raises:
            ArtifactStoreError: ``url`` is not a folder in the store.
        """
        if not self._remote(url):
            return self.local_path(url)
        return self._cache.partial(url, self._key(url), names)

    @property
    def _cache(self) -> BucketCache:
        return BucketCache(self.fs, self.cache_root)

    # -- job folders ---------------------------------------------------------------------------------

    def push_dir(self, local: Path, url: str, mirror: bool = False, only: str | None = None) -> int:
        """Upload the files of local folder ``local`` that are new or changed to folder ``url``
        (see :func:`fmhub.store.bucket_sync.push_dir`).

        Args:
            mirror: Also delete stored files under ``url`` that ``local`` no longer has.
            only: Limit the push (and the mirror) to this sub-folder or file, e.g. ``checkpoints``.

        Returns:
            The number of files uploaded (0 for a local store whose ``url`` is ``local`` itself).

        Raises:
            ArtifactStoreError: a local store asked to copy a folder somewhere else.
        """
        if not self._remote(url):
            if Path(url).resolve() == Path(local).resolve():
                return 0
            raise ArtifactStoreError(f"cannot push {local} to the local folder {url}",
                                     hint="job folders of a local store stay where they are")
        return bucket_sync.push_dir(self.fs, Path(local), self._key(url), mirror=mirror, only=only)

    def pull_dir(self, url: str, local: Path, only: str | None = None) -> int:
        """Download the files of folder ``url`` that ``local`` lacks or has at another size.

        Args:
            only: Limit the pull to this sub-folder or file.

        Returns:
            The number of files downloaded (0 for a local store, or nothing stored).
        """
        if not self._remote(url):
            return 0
        return bucket_sync.pull_dir(self.fs, self._key(url), Path(local), only=only)
