"""Direct uploads (presigned single-shot and multipart): the intent, its parts, completion and abort."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Response, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from api.deps import AppSettings, Blobs, Tenant, Waker
from api.idempotency import IdempotencyKey, idempotent
from api.schemas.direct_uploads import (
    DirectUploadAborted,
    DirectUploadCompleted,
    DirectUploadRequest,
    DirectUploadStatus,
    DuplicateUpload,
    MultipartUpload,
    PartConfirmed,
    PartConfirmRequest,
    PartRetryRequest,
    PartRetryUrl,
    SingleShotUpload,
)
from api.uploads import direct


class DirectUploadsController(Controller):
    path = "/api/v2/files/direct-uploads"
    tags = ("files",)

    @post("/")
    async def create(
        self,
        tenant: Tenant,
        settings: AppSettings,
        blobs: Blobs,
        data: JSONBody[DirectUploadRequest],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[SingleShotUpload | MultipartUpload | DuplicateUpload]:
        """201 with presigned URLs for the bytes; 200 when skip_duplicates finds the tenant's copy (no URL)."""

        async def work() -> Response[Any]:
            intent = await direct.create_intent(data, tenant, settings, blobs)
            return Response(intent, status_code=200 if isinstance(intent, DuplicateUpload) else 201)

        scope = "POST /files/direct-uploads"
        return await idempotent(idempotency_key, tenant, settings, scope, data, work, direct.refused_request)

    @get("/{upload_id:uuid}")
    async def status(self, tenant: Tenant, blobs: Blobs, upload_id: FromPath[uuid.UUID]) -> DirectUploadStatus:
        """The intent's state and, for multipart, its parts confirmed."""
        return await direct.intent_status(tenant, upload_id, blobs)

    @post("/{upload_id:uuid}/parts/confirm", status_code=200)
    async def confirm_part(
        self, tenant: Tenant, blobs: Blobs, upload_id: FromPath[uuid.UUID], data: JSONBody[PartConfirmRequest]
    ) -> PartConfirmed:
        """Confirm a part that S3 holds (checked against ListParts)."""
        return await direct.confirm_part(tenant, upload_id, data, blobs)

    @post("/{upload_id:uuid}/parts/retry", status_code=200)
    async def retry_part(
        self,
        tenant: Tenant,
        settings: AppSettings,
        blobs: Blobs,
        upload_id: FromPath[uuid.UUID],
        data: JSONBody[PartRetryRequest],
    ) -> PartRetryUrl:
        """A fresh presigned URL for one part."""
        return await direct.retry_part(tenant, upload_id, data.part_number, settings, blobs)

    @post("/{upload_id:uuid}/complete", status_code=202)
    async def complete(
        self,
        tenant: Tenant,
        settings: AppSettings,
        blobs: Blobs,
        wake: Waker,
        upload_id: FromPath[uuid.UUID],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DirectUploadCompleted]:
        """Verify the object against the claimed SHA-256, inspect it, record the file and queue its processing."""

        async def work() -> Response[Any]:
            completed = await direct.complete(tenant, upload_id, settings, blobs)
            wake()
            return Response(completed, status_code=202)

        scope = f"POST /files/direct-uploads/{upload_id}/complete"
        return await idempotent(idempotency_key, tenant, settings, scope, None, work, direct.final_refusal)

    @delete("/{upload_id:uuid}", status_code=200)
    async def abort(
        self,
        tenant: Tenant,
        blobs: Blobs,
        upload_id: FromPath[uuid.UUID],
        reason: Annotated[str | None, QueryParameter(max_length=255)] = None,
    ) -> DirectUploadAborted:
        """Abort the upload: its multipart upload aborted, any object deleted."""
        return await direct.abort(tenant, upload_id, reason, blobs)
