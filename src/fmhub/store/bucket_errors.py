"""Failures of a bucket artifact store, said in one line with what to do.

Every call on a bucket goes through :class:`GuardedFS`, which turns a missing bucket, refused
credentials and an unreachable endpoint into :class:`~fmhub.store.bucket_cache.ArtifactStoreError`
naming the store's ``s3://`` URL. A genuine "no such object" stays a ``FileNotFoundError``, which
the store's methods handle (``exists()`` is False, a listing is empty).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fmhub.store.bucket_cache import ArtifactStoreError

CLIENT_CONFIG = {"connect_timeout": 3, "read_timeout": 60, "retries": {"max_attempts": 2, "mode": "standard"}}
"""botocore client settings of a bucket store (seconds; attempts per request), so an unreachable
endpoint fails within seconds instead of minutes."""

MISSING_BUCKET_HINT = "create the bucket (e.g. `aws s3 mb s3://{bucket}`) or fix FMHUB_ARTIFACTS_URL"
CREDENTIALS_HINT = "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL)"
UNREACHABLE_HINT = "check AWS_ENDPOINT_URL / the network"

_MISSING_BUCKET_CODES = {"NoSuchBucket"}
_CREDENTIAL_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                     "InvalidToken", "AllAccessDisabled", "403"}


def _error_code(exc: BaseException) -> str:
    """The S3 error code of ``exc`` or of the botocore error it was translated from ("" if none)."""
    for err in (exc, exc.__cause__, exc.__context__):
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
    return ""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def translate(exc: BaseException, url: str) -> ArtifactStoreError | None:
    """The :class:`ArtifactStoreError` for a bucket failure, or None when ``exc`` is not one
    (e.g. a genuine missing object, which callers handle).

    Args:
        exc: What an fsspec/s3fs call raised.
        url: The store's root URL, ``s3://bucket/prefix``.
    """
    try:
        import botocore.exceptions as boto
    except ImportError:  # s3fs brings botocore; without it there is no bucket store
        return None
    bucket = url.split("://", 1)[-1].split("/", 1)[0]
    code = _error_code(exc)
    if code in _MISSING_BUCKET_CODES or (
            isinstance(exc, FileNotFoundError) and "bucket does not exist" in str(exc).lower()):
        return ArtifactStoreError(f"artifact store {url}: the bucket {bucket!r} does not exist",
                                  hint=MISSING_BUCKET_HINT.format(bucket=bucket))
    if isinstance(exc, FileNotFoundError):
        return None
    if isinstance(exc, (PermissionError, boto.NoCredentialsError, boto.PartialCredentialsError)) \
            or code in _CREDENTIAL_CODES:
        return ArtifactStoreError(f"artifact store {url}: access denied ({_one_line(exc)})", hint=CREDENTIALS_HINT)
    if isinstance(exc, (boto.EndpointConnectionError, boto.ConnectTimeoutError, boto.ReadTimeoutError,
                        boto.ConnectionClosedError, boto.HTTPClientError, ConnectionError, TimeoutError)):
        return ArtifactStoreError(f"artifact store {url}: cannot reach the S3 endpoint ({_one_line(exc)})",
                                  hint=UNREACHABLE_HINT)
    if isinstance(exc, (boto.BotoCoreError, boto.ClientError)):
        return ArtifactStoreError(f"artifact store {url}: {type(exc).__name__}: {_one_line(exc)}",
                                  hint="check FMHUB_ARTIFACTS_URL and the AWS_* settings")
    return None


@contextmanager
def remote_errors(url: str) -> Iterator[None]:
    """Turn the bucket failures raised inside into :class:`ArtifactStoreError` (see :func:`translate`).

    Raises:
        ArtifactStoreError: a missing bucket, refused credentials, an unreachable endpoint.
    """
    try:
        yield
    except ArtifactStoreError:
        raise
    except Exception as exc:
        error = translate(exc, url)
        if error is None:
            raise
        raise error from exc


class GuardedFS:
    """An fsspec filesystem whose every method call goes through :func:`remote_errors`.

    ``isfile`` and ``exists`` say False only for a genuine missing object (fsspec's own versions
    say False for any failure, a missing bucket included).

    Args:
        fs: The bucket's fsspec filesystem.
        url: The store's root URL, named in the errors.
    """

    def __init__(self, fs: Any, url: str) -> None:
        self._fs = fs
        self._url = url

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._fs, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            with remote_errors(self._url):
                return attr(*args, **kwargs)

        return guarded

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """The object's details; a missing object raises ``FileNotFoundError``."""
        with remote_errors(self._url):
            return self._fs.info(path, **kwargs)

    def isfile(self, path: str) -> bool:
        """True when ``path`` is an object; False when there is none."""
        try:
            return self.info(path)["type"] == "file"
        except FileNotFoundError:
            return False

    def exists(self, path: str, **kwargs: Any) -> bool:
        """True when ``path`` is an object or a folder with objects; False when neither."""
        try:
            self.info(path, **kwargs)
        except FileNotFoundError:
            return False
        return True

    def check(self, key: str) -> None:
        """List ``key`` (the store's prefix) once, so a bucket that cannot be used says so now.

        Raises:
            ArtifactStoreError: a missing bucket, refused credentials, an unreachable endpoint.
        """
        try:
            with remote_errors(self._url):
                self._fs.ls(key, detail=False)
        except FileNotFoundError:
            pass  # an empty prefix in an existing bucket
