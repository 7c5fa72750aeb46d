"""Domain errors: what went wrong, in words and a stable code, without HTTP. The API maps each
kind to a status code in one place (api/errors.py)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a client may cause or be told about."""

    code = "error"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra


class InvalidInput(DomainError):
    """A request that is well formed but whose values are not acceptable."""

    code = "validation_error"

    def __init__(self, detail: str, *, field: str | None = None, code: str | None = None) -> None:
        errors = [{"field": field, "message": detail}] if field else None
        super().__init__(f"{field}: {detail}" if field else detail, code=code, errors=errors)


class MalformedRequest(DomainError):
    code = "malformed_request"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class TooLarge(DomainError):
    code = "payload_too_large"


class UnsupportedMedia(DomainError):
    code = "unsupported_media_type"


class WrongMediaType(DomainError):
    """A media-specific operation on a file of another media type."""

    code = "wrong_media_type"


class AlreadyEnded(DomainError):
    """An operation on work that has already ended (cancelling a finished upload session): the spec's 400."""

    code = "already_ended"


class Unavailable(DomainError):
    """A backing service (database, S3) could not serve the request; the client may retry."""

    code = "service_unavailable"


class Misconfigured(DomainError):
    """A setting names something that cannot be used here (a model whose weights are not on this machine)."""

    code = "misconfigured"
