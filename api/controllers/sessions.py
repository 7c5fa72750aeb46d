"""The batch upload and the upload sessions it creates (api/uploads/batch.py, api/session_views.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, QueryParameter

from api.deps import AppSettings, Blobs, Form, Tenant, Waker
from api.paging import Offset
from api.schemas.sessions import BatchUploadResponse, SessionList, SessionResults, SessionStatus, SessionSummary
from api.session_views import session_list, session_results, session_status, session_summary
from api.uploads.batch import receive_batch
from store import sessions

# Every status the spec names; a session here is only ever processing, completed, failed or cancelled (its status
# is derived from its files, store/sessions.py), so the others list nothing.
SessionState = Literal["pending", "uploading", "processing", "completed", "failed", "expired", "cancelled"]


class SessionsController(Controller):
    path = "/api/v2/files"
    tags = ("sessions",)

    @post("/upload/batch", status_code=201, request_max_body_size=None)
    async def upload_batch(
        self, form: Form, tenant: Tenant, settings: AppSettings, blobs: Blobs, wake: Waker
    ) -> BatchUploadResponse:
        """Stream several files (multipart/form-data, parts named `files`; the form's fields apply to each) to
        storage as one upload session; 201 with each file's result and the files rejected, with why."""
        uploaded = await receive_batch(form, tenant, settings, blobs)
        wake()
        return uploaded

    @get("/sessions")
    async def list_sessions(
        self,
        tenant: Tenant,
        status: FromQuery[SessionState | None] = None,
        upload_method: FromQuery[Literal["streaming", "presigned"] | None] = None,
        offset: Offset = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> SessionList:
        """The caller's upload sessions, newest first."""
        return await session_list(tenant.id, status, upload_method, offset, limit)

    @get("/sessions/{session_id:uuid}/status")
    async def status(self, tenant: Tenant, session_id: FromPath[uuid.UUID]) -> SessionStatus:
        """Progress, the latest completions and errors."""
        return await session_status(tenant.id, session_id, datetime.now(UTC))

    @get("/sessions/{session_id:uuid}/results")
    async def results(
        self,
        tenant: Tenant,
        blobs: Blobs,
        session_id: FromPath[uuid.UUID],
        include_failed: FromQuery[bool] = True,
        offset: Offset = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> SessionResults:
        """Each file of the session in request order, with its outcome."""
        return await session_results(tenant.id, session_id, include_failed, offset, limit, blobs)

    @post("/sessions/{session_id:uuid}/cancel", status_code=200)
    async def cancel(self, tenant: Tenant, session_id: FromPath[uuid.UUID]) -> SessionStatus:
        """Stop what has not started: queued steps are cancelled and end `skipped`; files done keep their results,
        a step running finishes. 400 when the session has already ended."""
        now = datetime.now(UTC)
        await sessions.cancel(tenant.id, session_id, now)
        return await session_status(tenant.id, session_id, now)

    @get("/sessions/{session_id:uuid}/summary")
    async def summary(self, tenant: Tenant, settings: AppSettings, session_id: FromPath[uuid.UUID]) -> SessionSummary:
        """Counts of the session's files by status, and of their descriptions, for dashboards."""
        stuck_after = timedelta(minutes=settings.engine.stuck_minutes)
        return await session_summary(tenant.id, session_id, stuck_after, datetime.now(UTC))
