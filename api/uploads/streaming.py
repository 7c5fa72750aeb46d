"""POST /files/upload: the body streams to S3 while it is hashed and inspected; the file row is
written only once the bytes are safely stored, and any failure removes what was written."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api.schemas.files import FileUploadResponse
from api.uploads.fields import UploadOptions, build_options, parse_field, safe_filename
from api.uploads.form import FieldCollector, PartEnd, PartStart, form_events
from pipelines.sniff import ContentInspector, Detected, UnsupportedContent
from pipelines.steps import STEPS, UPLOAD_STEPS
from store import files
from store.blobs import BlobStore, BlobStoreError
from store.errors import InvalidInput, TooLarge, Unavailable, UnsupportedMedia
from store.settings import Settings
from store.status import initial_statuses
from store.tenants import TenantRef

DIRECT_UPLOADS = "/api/v2/files/direct-uploads"
# Room for the form's text fields around the file in a request's Content-Length.
FORM_ALLOWANCE = 1024 * 1024
DRAIN_SECONDS = 30.0


def original_key(tenant_id: uuid.UUID, file_id: uuid.UUID) -> str:
    """Object keys come from ids only: a filename never becomes a path."""
    return f"files/{tenant_id}/{file_id}/original"


def too_large(limit: int) -> TooLarge:
    return TooLarge(
        f"the file exceeds the streaming upload limit of {limit // (1024 * 1024)} MB",
        suggestion={
            "endpoint": DIRECT_UPLOADS,
            "message": "use the presigned direct-upload flow for files over the streaming limit",
        },
    )


class IncomingFile:
    """The `file` part: hashed, inspected and written to S3 as it arrives, capped in size."""

    def __init__(self, blobs: BlobStore, key: str, filename: str, limit: int) -> None:
        self.filename = filename
        self._limit = limit
        self._sha = hashlib.sha256()
        self._inspector = ContentInspector(filename)
        self._writer = blobs.writer(key)
        self.size = 0

    async def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._limit:
            raise too_large(self._limit)
        self._sha.update(chunk)
        self._inspect(lambda: self._inspector.feed(chunk))
        await self._writer.write(chunk)

    def identify(self) -> Detected:
        return self._inspect(self._inspector.finish)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    async def store(self) -> None:
        await self._writer.close()

    async def discard(self) -> None:
        await asyncio.shield(self._writer.abort())

    @staticmethod
    def _inspect(step: Any) -> Any:
        try:
            return step()
        except UnsupportedContent as exc:
            raise UnsupportedMedia(exc.reason, code=exc.code) from exc


@dataclass
class _Form:
    file: IncomingFile | None = None
    values: dict[str, Any] | None = None


async def _read_form(
    stream: AsyncIterator[bytes], boundary: str, blobs: BlobStore, key: str, limit: int, form: _Form
) -> None:
    """Consume the body: the file part goes to S3, text fields are validated as they complete."""
    form.values = {}
    field: FieldCollector | None = None
    async for event in form_events(stream, boundary):
        if isinstance(event, PartStart):
            if event.name == "file" and event.filename is not None:
                if form.file is not None:
                    raise InvalidInput("only one file per request; use /api/v2/files/upload/batch", field="file")
                form.file = IncomingFile(blobs, key, safe_filename(event.filename), limit)
                field = None
            else:
                field = FieldCollector(event.name)
        elif isinstance(event, PartEnd):
            if field is not None and (parsed := parse_field(field.name, field.text())) is not None:
                form.values[parsed[0]] = parsed[1]
            field = None
        elif field is not None:
            field.add(event)
        elif form.file is not None:
            await form.file.add(event)


async def _drain(stream: AsyncIterator[bytes], budget: int) -> None:
    """Read and drop what the client is still sending, so it can read our error response."""
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for chunk in stream:
                budget -= len(chunk)
                if budget < 0:
                    return
    except Exception:  # the client went away or is too slow: nothing more to do
        return


async def receive_upload(
    stream: AsyncIterator[bytes],
    content_length: int | None,
    tenant: TenantRef,
    settings: Settings,
    blobs: BlobStore,
    boundary: str,
) -> FileUploadResponse:
    started = time.perf_counter()
    limit = settings.max_upload_bytes
    if content_length is not None and content_length > limit + FORM_ALLOWANCE:
        await _drain(stream, limit)
        raise too_large(limit)
    file_id = uuid.uuid4()
    form = _Form()
    try:
        try:
            await _read_form(stream, boundary, blobs, original_key(tenant.id, file_id), limit, form)
        except TooLarge:
            await _drain(stream, limit)
            raise
        if form.file is None:
            raise InvalidInput("a file part named 'file' is required", field="file")
        if form.file.size == 0:
            raise UnsupportedMedia("the file is empty", code="empty_file")
        detected = form.file.identify()
        options = build_options(form.values or {})
        await form.file.store()
        steps = UPLOAD_STEPS[detected.media_type]
        existing = await _record(file_id, tenant, form.file, detected, options, steps)
        if existing is not None:
            await form.file.discard()
    except BlobStoreError as exc:
        if form.file is not None:
            await form.file.discard()
        raise Unavailable(f"storage is unavailable: {exc}") from exc
    except BaseException:
        if form.file is not None:
            await form.file.discard()
        raise
    return _response(file_id, existing, detected, options, steps, started)


async def _record(
    file_id: uuid.UUID,
    tenant: TenantRef,
    upload: IncomingFile,
    detected: Detected,
    options: UploadOptions,
    steps: tuple[str, ...],
) -> uuid.UUID | None:
    """Write the file row and queue its steps; None, or the existing copy's id when skipped."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": file_id,
        "tenant": tenant.id,
        "media_type": detected.media_type,
        "filename": upload.filename,
        "title": options.title,
        "tags": options.tags,
        "size_bytes": upload.size,
        "content_type": detected.content_type,
        "format": detected.format,
        "document_type": detected.document_type,
        "sha256": upload.sha256,
        "object_key": original_key(tenant.id, file_id),
        "upload_method": "STREAMING",
        "storage_target": options.storage_target,
        "folder_id": options.folder_id,
        "project_id": options.project_id,
        "content_category": options.content_category,
        "auto_describe": options.auto_describe,
        "custom_schema_id": options.custom_schema_id,
        "compliance_type": options.compliance_type,
        "compliance_standard": options.compliance_standard,
        "compliance_image_type": options.compliance_image_type if options.compliance_type else None,
        "created_at": now,
        "updated_at": now,
        **initial_statuses(detected.media_type, options.auto_describe, tuple(STEPS[s].component for s in steps)),
    }
    return await files.insert_unless_duplicate(values, skip_duplicates=options.skip_duplicates, steps=steps)


def _response(
    file_id: uuid.UUID,
    existing: uuid.UUID | None,
    detected: Detected,
    options: UploadOptions,
    steps: tuple[str, ...],
    started: float,
) -> FileUploadResponse:
    skipped = existing is not None
    queued = bool(steps) and not skipped
    return FileUploadResponse(
        file_id=existing or file_id,
        upload_method="STREAMING",
        status="skipped" if skipped else "processing" if queued else "completed",
        processing_time_ms=round((time.perf_counter() - started) * 1000, 1),
        upload_completed=True,
        thumbnail_generation_started=queued and "variants" in steps,
        analysis_started=False,
        skipped=skipped,
        existing_file_id=existing,
        storage_target=options.storage_target,
        media_type=detected.media_type,
        document_type=detected.document_type,
        text_extraction_status=None if skipped or detected.media_type != "document" else "pending",
    )
