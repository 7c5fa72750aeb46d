"""One JSON shape for every error: {"detail", "code", "status_code", ...extra}. Domain errors are
mapped to status codes here and nowhere else."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from store.errors import (
    AlreadyEnded,
    Conflict,
    DomainError,
    InvalidInput,
    MalformedRequest,
    NotFound,
    TooLarge,
    Unavailable,
    UnsupportedMedia,
    WrongMediaType,
)

log = logging.getLogger(__name__)

_STATUS: dict[type[DomainError], int] = {
    MalformedRequest: 400,
    AlreadyEnded: 400,
    WrongMediaType: 400,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    UnsupportedMedia: 415,
    InvalidInput: 422,
    Unavailable: 503,
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
    503: "service_unavailable",
}


def error_response(status: int, detail: str, code: str, **extra: Any) -> Response[dict[str, Any]]:
    body = {"detail": detail, "code": code, "status_code": status}
    body.update({key: value for key, value in extra.items() if value is not None})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)


def _status_of(exc: DomainError) -> int:
    for kind in type(exc).__mro__:
        if kind in _STATUS:
            return _STATUS[kind]
    return 400


def domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    return error_response(_status_of(exc), exc.detail, exc.code, **exc.extra)


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationException):
        status = 422 if exc.extra else 400
        extra["errors"] = exc.extra or None
    code = _HTTP_CODES.get(status, "error" if status < 500 else "internal_error")
    return error_response(status, str(exc.detail), code, **extra)


def service_down(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.error("backing service unavailable: %s", exc)
    return error_response(
        503, "a backing service (database or storage) is unavailable; retry later", "service_unavailable"
    )


def unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error", exc_info=exc)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "internal server error", "internal_error")


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    DomainError: domain_error,
    HTTPException: http_error,
    asyncpg.PostgresConnectionError: service_down,
    asyncpg.InterfaceError: service_down,
    asyncpg.CannotConnectNowError: service_down,
    ConnectionError: service_down,
    OSError: service_down,
    Exception: unexpected,
}
