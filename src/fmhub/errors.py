"""One error family: every error a user can act on is an :class:`FmhubError`.

Each error carries a stable ``code`` (mapped to an HTTP status for the API), a ``message`` that says
what is wrong (file, line, column, value where they are known) and a ``hint`` that says what to do.
"""

from __future__ import annotations

from typing import Any


class FmhubError(Exception):
    """Base class for errors a user can act on.

    Args:
        message: What went wrong, naming file, line, column and value where known.
        hint: What to do about it.
        details: Machine-readable extras (e.g. a list of problems), shown in ``--json`` output.
    """

    code = "fmhub_error"
    http_status = 400

    def __init__(self, message: str, hint: str = "", details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details
        self.headers = headers

    def to_dict(self) -> dict[str, Any]:
        """Return the error body shared by the CLI (``--json``) and the REST API."""
        body: dict[str, Any] = {"code": self.code, "message": self.message, "hint": self.hint}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class NotFoundError(FmhubError):
    """A model, version, data asset or job does not exist."""

    code = "not_found"
    http_status = 404


class ConflictError(FmhubError):
    """The request contradicts existing state (e.g. a name already taken)."""

    code = "conflict"
    http_status = 409


class SpecError(FmhubError):
    """A job spec (flags, YAML file or REST body) is invalid; ``details`` lists every problem."""

    code = "invalid_spec"
    http_status = 422


class DataError(FmhubError):
    """A data file cannot be read or fails validation; ``details`` lists every problem."""

    code = "invalid_data"
    http_status = 422


class ModelUnavailableError(FmhubError):
    """A catalog model's weights are not on this machine and cannot be fetched."""

    code = "model_unavailable"
    http_status = 409


class ImportRefusedError(FmhubError):
    """A model folder was refused at import (pickle weights, remote code, missing files)."""

    code = "import_refused"
    http_status = 422


class JobFailedError(FmhubError):
    """A job ended in failure; the message names the cause and the log file."""

    code = "job_failed"
    http_status = 500


class JobCanceledError(FmhubError):
    """A job was canceled (by the user or an interruption) before it finished."""

    code = "job_canceled"
    http_status = 409


class UnauthorizedError(FmhubError):
    """A missing or wrong key."""

    code = "unauthorized"
    http_status = 401


class PayloadTooLargeError(FmhubError):
    """A request body over the size limit."""

    code = "payload_too_large"
    http_status = 413


class OverloadedError(FmhubError):
    """Too many requests wait; ``headers`` carries ``Retry-After``."""

    code = "overloaded"
    http_status = 429


class UnavailableError(FmhubError):
    """Nothing can answer now (no deployment ready, an instance restarting)."""

    code = "unavailable"
    http_status = 503


class ScoringTimeoutError(FmhubError):
    """A scoring request was not answered within the deployment's ``request_timeout_ms``."""

    code = "timeout"
    http_status = 504


class ForbiddenPathError(FmhubError):
    """A path in a request to the server lies outside the server's data roots (``..`` and symlinks
    resolved first); ``details`` lists each refused field with its value."""

    code = "forbidden_path"
    http_status = 403


class ComputeUnavailableError(FmhubError):
    """A job or deployment names a compute cluster (``ray``) that is not configured, not installed
    or does not answer."""

    code = "compute_unavailable"
    http_status = 503


HTTP_STATUS_BY_CODE: dict[str, int] = {
    cls.code: cls.http_status
    for cls in (
        FmhubError,
        NotFoundError,
        ConflictError,
        SpecError,
        DataError,
        ModelUnavailableError,
        ImportRefusedError,
        JobFailedError,
        JobCanceledError,
        UnauthorizedError,
        PayloadTooLargeError,
        OverloadedError,
        UnavailableError,
        ScoringTimeoutError,
        ForbiddenPathError,
        ComputeUnavailableError,
    )
}
