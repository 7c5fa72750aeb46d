"""The one table from exception to status and code, and what the one handler shows and logs."""

from __future__ import annotations

import json
import logging

import asyncpg
import botocore.exceptions
import pytest
from litestar.exceptions import NotAuthorizedException, ValidationException

from api.errors import handle, status_of
from store.blob_store import BlobStoreError
from store.errors import (
    AlreadyEnded,
    Conflict,
    DomainError,
    InvalidInput,
    MalformedRequest,
    Misconfigured,
    NotFound,
    TooLarge,
    Unavailable,
    UnsupportedMedia,
    WrongMediaType,
)

DOWN = (503, "service_unavailable")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (MalformedRequest("expected a multipart/form-data body"), (400, "malformed_request")),
        (AlreadyEnded("the session has ended"), (400, "already_ended")),
        (WrongMediaType("not an image"), (400, "wrong_media_type")),
        (DomainError("something else the client did"), (400, "error")),
        (NotFound("no such file"), (404, "not_found")),
        (Conflict("file busy", code="file_busy"), (409, "file_busy")),  # an error's own code is more specific
        (TooLarge("over the limit"), (413, "payload_too_large")),
        (UnsupportedMedia("an executable", code="executable"), (415, "executable")),
        (InvalidInput("must be positive", field="limit"), (422, "validation_error")),
        (Misconfigured("SCOPIX_MODELS__EMBED_TEXT__MODEL: not on this machine"), (500, "misconfigured")),
        (Unavailable("the embedder cannot serve now", code="embedder_unavailable"), (503, "embedder_unavailable")),
        (BlobStoreError("could not store object"), DOWN),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), DOWN),
        (botocore.exceptions.ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), DOWN),
        (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"), DOWN),
        (asyncpg.CannotConnectNowError("the database system is starting up"), DOWN),
        (asyncpg.AdminShutdownError("terminating connection due to administrator command"), DOWN),
        (ConnectionRefusedError(111, "Connection refused"), DOWN),
        (FileNotFoundError(2, "No such file or directory", "/etc/scopix/secret"), (500, "internal_error")),
        (PermissionError(13, "Permission denied"), (500, "internal_error")),
        (TimeoutError(), (500, "internal_error")),
        (asyncpg.UniqueViolationError("duplicate key"), (500, "internal_error")),
        (asyncpg.UntranslatableCharacterError("unsupported Unicode escape sequence"), (400, "invalid_value")),
        (asyncpg.NumericValueOutOfRangeError("integer out of range"), (400, "invalid_value")),
        (asyncpg.DataError("invalid input for query argument $2: 9223372036854775808"), (400, "invalid_value")),
        (KeyError("column"), (500, "internal_error")),
        (NotAuthorizedException("invalid or revoked API key"), (401, "unauthorized")),
        (ValidationException("bad body"), (400, "bad_request")),
        (ValidationException("bad field", extra=[{"key": "limit"}]), (422, "validation_error")),
    ],
)
def test_each_exception_maps_to_one_status_and_code(exc: Exception, expected: tuple[int, str]) -> None:
    assert status_of(exc) == expected


def raised_while_handling(exc: Exception, first: Exception) -> Exception:
    try:
        try:
            raise first
        except Exception:
            raise exc  # noqa: B904  (the implicit context is the point)
    except Exception as caught:
        return caught


def test_a_failure_while_cleaning_up_after_a_lost_connection_is_that_loss() -> None:
    lost = asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    rollback = asyncpg.InterfaceError("cannot call Transaction.rollback(): the underlying connection is closed")
    assert status_of(raised_while_handling(rollback, lost)) == DOWN
    assert status_of(raised_while_handling(KeyError("row"), ValueError("parse"))) == (500, "internal_error")
    assert status_of(raised_while_handling(KeyError("row"), NotFound("no such file"))) == (500, "internal_error")


def body(exc: Exception) -> dict:
    response = handle(None, exc)  # type: ignore[arg-type]  (the handler never reads the request)
    content = json.loads(response.render(response.content, response.media_type))
    assert content["status_code"] == response.status_code
    return content


def test_a_client_error_answers_in_its_own_words() -> None:
    assert body(InvalidInput("must be positive", field="limit")) == {
        "detail": "limit: must be positive",
        "code": "validation_error",
        "status_code": 422,
        "errors": [{"field": "limit", "message": "must be positive"}],
    }


def test_a_misconfiguration_is_logged_as_an_error_and_not_shown(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="api.errors"):
        shown = body(Misconfigured("SCOPIX_MODELS__EMBED_TEXT__MODEL: /models/minilm is not on this machine"))
    assert shown == {"detail": "internal server error", "code": "misconfigured", "status_code": 500}
    [record] = caplog.records
    assert record.levelno == logging.ERROR and "/models/minilm is not on this machine" in record.getMessage()


def test_an_unexpected_error_is_logged_with_its_traceback_and_not_shown(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="api.errors"):
        shown = body(FileNotFoundError(2, "No such file or directory", "/etc/scopix/secret"))
    assert shown == {"detail": "internal server error", "code": "internal_error", "status_code": 500}
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None


def test_an_unreachable_service_is_a_503_without_its_text(caplog: pytest.LogCaptureFixture) -> None:
    cause = botocore.exceptions.EndpointConnectionError(endpoint_url="http://10.0.0.7:8333")
    with caplog.at_level(logging.INFO, logger="api.errors"):
        try:
            raise Unavailable(f"storage is unavailable: {cause}") from cause
        except Unavailable as exc:
            shown = body(exc)
    assert shown["status_code"] == 503 and shown["code"] == "service_unavailable"
    assert "10.0.0.7" not in shown["detail"]
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "10.0.0.7" in record.getMessage()


def test_a_value_the_database_refuses_is_the_clients_400_logged_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="api.errors"):
        shown = body(asyncpg.UntranslatableCharacterError("unsupported Unicode escape sequence \\u0000"))
    assert shown["status_code"] == 400 and shown["code"] == "invalid_value"
    assert "Unicode" not in shown["detail"] and "cannot be stored" in shown["detail"]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
