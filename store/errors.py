"""Domain errors: what went wrong, in words, without HTTP. The API maps each kind to a status and a machine code
in one table (api/errors.py); an error may name a more specific code of its own."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a client may cause or be told about."""

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.extra = extra


class InvalidInput(DomainError):
    """A request that is well formed but whose values are not acceptable."""

    def __init__(self, detail: str, *, field: str | None = None, code: str | None = None) -> None:
        errors = [{"field": field, "message": detail}] if field else None
        super().__init__(f"{field}: {detail}" if field else detail, code=code, errors=errors)


class MalformedRequest(DomainError):
    """A request the API cannot read or act on as sent (a broken multipart body, an unknown variant)."""


class NotFound(DomainError):
    """No such resource for this tenant."""


class Conflict(DomainError):
    """The request contradicts the resource's state (an ambiguous id prefix, a file being processed)."""


class TimedOut(DomainError):
    """A request whose body stopped arriving: the client sent nothing for longer than the server waits."""


class TooLarge(DomainError):
    """A body or file over its limit."""


class UnsupportedMedia(DomainError):
    """Content we do not take (refused by sniffing, or a type we do not process)."""


class WrongMediaType(DomainError):
    """A media-specific operation on a file of another media type."""


class AlreadyEnded(DomainError):
    """An operation on work that has already ended (cancelling a finished upload session): the spec's 400."""


class Unavailable(DomainError):
    """A backing service (database, S3, the model actors) could not serve the request; the client may retry."""


class Misconfigured(DomainError):
    """A setting names something that cannot be used here (a model whose weights are not on this machine): the
    operator's to fix, not the client's."""


class QuotaExceeded(DomainError):
    """More files (or a video's analysis) than the tenant's month's quota and prepaid credits leave: waiting does not
    help before the next month, credits or a higher tier do."""


class TooBusy(DomainError):
    """The tenant already has as many uploads in flight as its tier allows: retry after `retry_after` seconds."""

    def __init__(self, detail: str, *, retry_after: int, **extra: object) -> None:
        super().__init__(detail, code="too_many_uploads", retry_after=retry_after, **extra)
        self.retry_after = retry_after
