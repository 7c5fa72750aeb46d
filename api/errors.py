"""One JSON shape for every error, {"detail", "code", "status_code", ...extra}, and one table from exception class
to status and code, read by one handler. A client's error (4xx) answers in the domain error's own words; a server's
(5xx) answers a generic detail and its text goes to the log: an unavailable database or storage as a warning, a
misconfiguration as an error, anything unexpected with its traceback."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import botocore.exceptions
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from store.blob_store import BlobStoreError
from store.errors import (
    AlreadyEnded,
    Conflict,
    DomainError,
    InvalidInput,
    MalformedRequest,
    Misconfigured,
    NotFound,
    QuotaExceeded,
    TimedOut,
    TooBusy,
    TooLarge,
    Unavailable,
    UnsupportedMedia,
    WrongMediaType,
)

log = logging.getLogger(__name__)

# The nearest class in the exception's MRO decides; a domain error's own code, when it has one, is more specific.
STATUS: dict[type[BaseException], tuple[int, str]] = {
    MalformedRequest: (400, "malformed_request"),
    AlreadyEnded: (400, "already_ended"),
    WrongMediaType: (400, "wrong_media_type"),
    QuotaExceeded: (403, "quota_exceeded"),
    NotFound: (404, "not_found"),
    TimedOut: (408, "request_timeout"),
    Conflict: (409, "conflict"),
    TooLarge: (413, "payload_too_large"),
    UnsupportedMedia: (415, "unsupported_media_type"),
    InvalidInput: (422, "validation_error"),
    TooBusy: (429, "too_many_uploads"),
    DomainError: (400, "error"),
    # A value the database refuses (a NUL, a number or date out of its range): the client's, though the API
    # should have refused it first; a safety net, logged as a warning so that the missing check is found.
    asyncpg.DataError: (400, "invalid_value"),
    Misconfigured: (500, "misconfigured"),
    # A backing service (the database, storage, the model actors) cannot serve now: the client may retry.
    Unavailable: (503, "service_unavailable"),
    BlobStoreError: (503, "service_unavailable"),
    botocore.exceptions.ConnectionError: (503, "service_unavailable"),  # EndpointConnectionError, connect timeout
    botocore.exceptions.HTTPClientError: (503, "service_unavailable"),  # connection closed, read timeout
    asyncpg.PostgresConnectionError: (503, "service_unavailable"),  # the connection failed or was lost
    asyncpg.OperatorInterventionError: (503, "service_unavailable"),  # shutting down, starting, backend terminated
    ConnectionError: (503, "service_unavailable"),  # a socket to Postgres or S3 refused or reset
    Exception: (500, "internal_error"),
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}

_GENERIC = {
    400: "a value in the request cannot be stored or compared (out of range, or with a character not allowed)",
    500: "internal server error",
    503: "a backing service is unavailable; retry later",
}


def error_response(
    status: int, detail: str, code: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    body = {"detail": detail, "code": code, "status_code": status}
    body.update({key: value for key, value in extra.items() if value is not None})
    headers = {**(headers or {}), **({"WWW-Authenticate": "Bearer"} if status == 401 else {})}
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers or None)


def status_of(exc: BaseException) -> tuple[int, str]:
    """The status and code an exception answers (Litestar's own exceptions carry their status)."""
    if isinstance(exc, HTTPException):
        status = (422 if exc.extra else 400) if isinstance(exc, ValidationException) else exc.status_code
        return status, _HTTP_CODES.get(status, "error" if status < 500 else "internal_error")
    status, code = next(STATUS[kind] for kind in type(exc).__mro__ if kind in STATUS)
    interrupted = exc.__cause__ or exc.__context__
    if status == 500 and interrupted is not None and status_of(interrupted)[0] == 503:
        return status_of(interrupted)  # cleaning up after a lost connection failed too (a rollback on it)
    return status, exc.code if isinstance(exc, DomainError) and exc.code else code


def handle(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The one exception handler: the table's answer; a server's own error is logged, never shown."""
    status, code = status_of(exc)
    if status < 500 and isinstance(exc, HTTPException):
        errors = exc.extra if isinstance(exc, ValidationException) else None
        return error_response(status, str(exc.detail), code, exc.headers, errors=errors or None)
    if status < 500 and isinstance(exc, DomainError):
        retry_after = exc.extra.get("retry_after")  # a refusal that passes later says when (429, 409)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return error_response(status, exc.detail, code, headers, **exc.extra)
    if status < 500 or status == 503:
        log.warning("%s: %s", code, exc, exc_info=exc)
    elif isinstance(exc, Misconfigured):
        log.error("misconfigured: %s", exc)
    else:
        log.exception("unhandled error", exc_info=exc)
    return error_response(status, _GENERIC.get(status, _GENERIC[500]), code)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {Exception: handle}
