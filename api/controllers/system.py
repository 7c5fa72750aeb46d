"""Health and the spec's unauthenticated client telemetry."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Response, get, post
from litestar.params import JSONBody
from msgspec import Meta

from api.auth import PUBLIC
from api.deps import Blobs
from store.database import ping
from store.errors import InvalidInput

log = logging.getLogger("scopix.client_events")

MAX_EVENT_DATA_BYTES = 10 * 1024


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


@post("/api/v2/files/log-upload-event", opt={PUBLIC: True}, status_code=200, request_max_body_size=64 * 1024)
async def log_upload_event(data: JSONBody[UploadEvent]) -> UploadEventLogged:
    """Fire-and-forget client telemetry: validated, logged, never stored."""
    if data.data is not None and len(msgspec.json.encode(data.data)) > MAX_EVENT_DATA_BYTES:
        raise InvalidInput("must serialise to at most 10 KB", field="data")
    log.info("client upload event %s: %s", data.event_type, data.message, extra={"event": msgspec.to_builtins(data)})
    return UploadEventLogged(status="logged", timestamp=datetime.now(UTC))
