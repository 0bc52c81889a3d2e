"""Reading a bucket artifact store: manifests, content hashes and the local cache of downloads.

A folder in a bucket carries a manifest (``.fmhub-manifest.json``: every file's size and sha256),
written last, so a folder with a manifest is complete; the sha256 of the manifest's bytes is the
folder's content hash. A downloaded file or folder is kept under ``<cache root>/<sha256>``, so it is
downloaded once per machine whatever URL names it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from fmhub.errors import FmhubError

MANIFEST = ".fmhub-manifest.json"
"""The name of a folder's manifest in a bucket: ``{"files": {relpath: {"size", "sha256"}}}``."""

CHUNK_BYTES = 1024 * 1024


class ArtifactStoreError(FmhubError):
    """The artifact store cannot be used: a bad URL, a missing extra, a missing bucket, refused
    credentials, an unreachable endpoint, a changed artifact (HTTP 503: the server's storage)."""

    code = "artifact_store"
    http_status = 503


class ArtifactNotFoundError(ArtifactStoreError):
    """An artifact the catalog records is not in the store (HTTP 404)."""

    code = "artifact_not_found"
    http_status = 404


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes (64 hex digits), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def folder_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a local folder: ``{"files": {relative posix path: {"size", "sha256"}}}``."""
    files = {}
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel != MANIFEST:
            files[rel] = {"size": path.stat().st_size, "sha256": sha256_of(path)}
    return {"files": files}


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The canonical bytes of a manifest (their sha256 is the folder's content hash)."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode("utf-8")


def missing(url: str) -> ArtifactNotFoundError:
    """The error for an artifact the store does not have."""
    return ArtifactNotFoundError(f"{url} is not in the artifact store",
                              hint="check FMHUB_ARTIFACTS_URL and the store's credentials; "
                                   "the artifact may have been deleted")


class BucketCache:
    """Local copies of a bucket's files and folders, by content hash.

    Args:
        fs: The bucket's fsspec filesystem.
        root: The cache folder (``FMHUB_HOME/cache/artifacts``).
    """

    def __init__(self, fs: Any, root: Path) -> None:
        self.fs = fs
        self.root = Path(root)

    def folder(self, url: str, key: str) -> Path:
        """The local copy of complete folder ``key`` (downloaded and checked file by file once).

        Raises:
            ArtifactStoreError: no manifest there, or a file does not match it.
        """
        try:
            raw = self.fs.cat_file(f"{key}/{MANIFEST}")
        except FileNotFoundError:
            raise missing(url) from None
        dest = self.root / hashlib.sha256(raw).hexdigest()
        if dest.is_dir():
            return dest
        tmp = self.root / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            for rel, meta in json.loads(raw)["files"].items():
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(f"{key}/{rel}", str(target))
                if sha256_of(target) != meta["sha256"]:
                    raise ArtifactStoreError(f"{url}/{rel} does not match the folder's manifest",
                                             hint="the stored folder was changed after it was written; "
                                                  "register the model again")
            try:
                tmp.rename(dest)
            except OSError:  # another process placed it first
                pass
            return dest
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def file(self, url: str, key: str, sha256: str | None = None) -> Path:
        """The local copy of file ``key``: ``<root>/<sha256>/<its name>``.

        Args:
            sha256: The file's recorded hash (checked); None: the hash of its bytes, remembered per
                object ETag and size so the next call finds the copy without downloading.

        Raises:
            ArtifactStoreError: no such file, or it does not match ``sha256``.
        """
        if not self.fs.isfile(key):
            raise missing(url)
        name = key.rsplit("/", 1)[-1]
        if sha256 is None:
            sha256 = self._known_hash(key)
        if sha256 is not None and (self.root / sha256 / name).is_file():
            return self.root / sha256 / name
        tmp = self.root / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            self.fs.get_file(key, str(tmp / name))
            actual = sha256_of(tmp / name)
            if sha256 is not None and actual != sha256:
                raise ArtifactStoreError(f"{url} does not match its recorded sha256 ({sha256[:12]}...)",
                                         hint="the stored file was changed after it was registered; "
                                              "register the data again")
            self._remember_hash(key, actual)
            dest = self.root / actual
            if not (dest / name).is_file():
                shutil.rmtree(dest, ignore_errors=True)
                try:
                    tmp.rename(dest)
                except OSError:  # another process placed it first
                    pass
            return dest / name
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def partial(self, url: str, key: str, names: tuple[str, ...]) -> Path:
        """A local folder with only the files ``names`` of folder ``key`` (the full copy when there
        is one, else ``<root>/partial/<manifest sha256>``).

        Raises:
            ArtifactStoreError: ``key`` is not a complete folder.
        """
        try:
            raw = self.fs.cat_file(f"{key}/{MANIFEST}")
        except FileNotFoundError:
            raise missing(url) from None
        digest = hashlib.sha256(raw).hexdigest()
        if (self.root / digest).is_dir():
            return self.root / digest
        dest = self.root / "partial" / digest
        files = json.loads(raw)["files"]
        dest.mkdir(parents=True, exist_ok=True)
        for name in names:
            if name in files and not (dest / name).is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                tmp = dest / f".tmp-{uuid.uuid4().hex[:8]}"
                self.fs.get_file(f"{key}/{name}", str(tmp))
                tmp.replace(dest / name)
        return dest

    def _hash_index(self, key: str) -> Path | None:
        try:
            info = self.fs.info(key)
        except FileNotFoundError:
            return None
        tag = f"{key}|{info.get('ETag') or info.get('etag')}|{info.get('size')}"
        return self.root / "index" / hashlib.sha256(tag.encode("utf-8")).hexdigest()

    def _known_hash(self, key: str) -> str | None:
        index = self._hash_index(key)
        if index is not None and index.is_file():
            return index.read_text(encoding="utf-8").strip() or None
        return None

    def _remember_hash(self, key: str, digest: str) -> None:
        index = self._hash_index(key)
        if index is not None:
            index.parent.mkdir(parents=True, exist_ok=True)
            index.write_text(digest, encoding="utf-8")
