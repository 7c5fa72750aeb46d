"""Health and the spec's unauthenticated client telemetry."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import TooManyRequestsException
from litestar.params import JSONBody
from msgspec import Meta

from api.auth import PUBLIC
from api.deps import Blobs
from api.rate_limit import RateLimiter
from store.database import ping
from store.errors import InvalidInput

log = logging.getLogger("scopix.client_events")

MAX_EVENT_DATA_BYTES = 10 * 1024
MAX_EVENT_DATA_DEPTH = 8


class UploadEvent(msgspec.Struct):
    event_type: Annotated[str, Meta(min_length=1, max_length=100)]
    message: Annotated[str, Meta(min_length=1, max_length=2000)]
    data: dict[str, Any] | None = None
    timestamp: datetime | None = None
    session_id: Annotated[str, Meta(max_length=100)] | None = None
    file_index: Annotated[int, Meta(ge=0, le=10_000)] | None = None
    file_name: Annotated[str, Meta(max_length=500)] | None = None


class UploadEventLogged(msgspec.Struct):
    status: str
    timestamp: datetime


@get("/health", opt={PUBLIC: True})
async def health(blobs: Blobs) -> Response[dict[str, str]]:
    """200 once the database and S3 answer, else 503 naming what does not."""
    checks = {"database": await ping(), "s3": await blobs.ping()}
    body = {name: "ok" if ok else "unavailable" for name, ok in checks.items()}
    healthy = all(checks.values())
    body["status"] = "ok" if healthy else "unavailable"
    return Response(body, status_code=200 if healthy else 503)


def _depth(value: object) -> int:
    """How deeply objects and arrays nest in a decoded JSON value (a scalar: 0), without recursing."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        node, depth = pending.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, depth + 1)
            pending.extend((child, depth + 1) for child in children)
    return deepest


async def _guard_event(request: Request[Any, Any, Any]) -> None:
    """Before the body is decoded into an UploadEvent: a client past its rate is 429 (with Retry-After), and a
    `data` nested deeper than MAX_EVENT_DATA_DEPTH is 422 (nested deep enough, it would exhaust the decoder's
    recursion, a 500)."""
    limiter: RateLimiter = request.app.state.event_limiter
    if wait := limiter.take(request.client.host if request.client else "unknown"):
        raise TooManyRequestsException("too many client events; retry later", headers={"Retry-After": str(wait)})
    try:
        body = msgspec.json.decode(await request.body())
    except RecursionError:
        raise InvalidInput(f"must nest at most {MAX_EVENT_DATA_DEPTH} levels", field="data") from None
    except msgspec.DecodeError:
        return  # the body's own decoding answers 400
    if isinstance(body, dict) and _depth(body.get("data")) > MAX_EVENT_DATA_DEPTH:
        raise InvalidInput(f"must nest at most {MAX_EVENT_DATA_DEPTH} levels", field="data")


@post(
    "/api/v2/files/log-upload-event",
    opt={PUBLIC: True},
    status_code=200,
    request_max_body_size=64 * 1024,
    before_request=_guard_event,
)
async def log_upload_event(data: JSONBody[UploadEvent]) -> UploadEventLogged:
    """Fire-and-forget client telemetry: validated, logged as one line of JSON (a newline or a control character
    in it is escaped, so a client cannot write a log line of its own), never stored; rate-limited per address."""
    if data.data is not None and len(msgspec.json.encode(data.data)) > MAX_EVENT_DATA_BYTES:
        raise InvalidInput("must serialise to at most 10 KB", field="data")
    log.info("client upload event %s", msgspec.json.encode(data).decode(), extra={"event": msgspec.to_builtins(data)})
    return UploadEventLogged(status="logged", timestamp=datetime.now(UTC))
