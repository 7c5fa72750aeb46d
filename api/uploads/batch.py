"""The batch upload (POST /files/upload/batch): several files in one multipart request (parts named `files`),
each streamed to S3 as it arrives (hashed, inspected, capped at the streaming limit), then recorded together with a
new upload session once the whole form is in, since its fields, which apply to every file, may come after the
files. A file that cannot be taken (empty, refused content, over the limit) is rejected alone, with the reason;
the session keeps every file of the request in order. Any other failure records nothing and removes every object.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from api.errors import status_of
from api.schemas.sessions import BatchFileResult, BatchRejection, BatchUploadResponse
from api.uploads.admission import admitted
from api.uploads.fields import UploadOptions, build_options, parse_field, safe_filename
from api.uploads.form import FieldCollector, MultipartBody, PartEnd, PartStart, form_events
from api.uploads.streaming import (
    FORM_ALLOWANCE,
    IncomingFile,
    UploadRules,
    discarded_on_failure,
    drain,
    record_incoming,
    too_large,
    upload_response,
)
from store import quotas, sessions
from store.blob_store import BlobStore
from store.database import transaction
from store.errors import DomainError, InvalidInput, TooLarge, UnsupportedMedia
from store.keys import original_key
from store.settings import Settings
from store.tenants import TenantRef

_FIELD_PARTS = 32  # room for the form's text fields beside its files
# A batch file's result is the single upload's answer for it, with its filename and error.
_AS_UPLOADED = tuple(name for name in BatchFileResult.__struct_fields__ if name not in ("filename", "error"))


@dataclass
class _Entry:
    """One file part of the request: its object in S3 and, once known, why it was rejected."""

    file_id: uuid.UUID
    incoming: IncomingFile
    started: float = field(default_factory=time.perf_counter)
    error: DomainError | None = None

    async def reject(self, error: DomainError) -> None:
        self.error = error
        await self.incoming.discard()


async def receive_batch(
    body: MultipartBody, tenant: TenantRef, settings: Settings, blobs: BlobStore
) -> BatchUploadResponse:
    rules = UploadRules(settings.storage.max_upload_bytes, describes=settings.models.describe.model is not None)
    most = quotas.limits_of(tenant.tier).max_batch_size
    if body.content_length is not None and body.content_length > most * rules.max_bytes + FORM_ALLOWANCE:
        await drain(body.stream, rules.max_bytes)
        raise too_large(rules)
    async with admitted(tenant, settings.quotas, lambda: drain(body.stream, most * rules.max_bytes)):
        return await _store_batch(body, tenant, blobs, rules, most)


async def _store_batch(
    body: MultipartBody, tenant: TenantRef, blobs: BlobStore, rules: UploadRules, most: int
) -> BatchUploadResponse:
    """Read the batch, then record its files, their credits (all or none: a batch beyond the quota records
    nothing) and its session in one transaction."""
    entries: list[_Entry] = []
    values: dict[str, Any] = {}
    async with discarded_on_failure(lambda: [entry.incoming for entry in entries]):
        try:
            await _read_batch(body, blobs, tenant, rules, most, entries, values)
        except DomainError:  # refused mid-body (too many files, a bad field): let the client read why
            await drain(body.stream, rules.max_bytes)
            raise
        if not entries:
            raise InvalidInput("at least one file part named 'files' is required", field="files")
        options = build_options(values)
        session_id, now = uuid.uuid4(), datetime.now(UTC)
        results: list[BatchFileResult] = []
        recorded: list[sessions.SessionFile] = []
        async with transaction():
            for entry in entries:
                result = await _record(entry, tenant, options, rules)
                recorded.append(_session_file(entry, result))
                if result is not None:
                    results.append(result)
            new = [result for result in results if not result.skipped]
            videos = [result.file_id for result in new if result.media_type == "video"]
            await quotas.charge(tenant.id, len(new), videos)
            await sessions.create(session_id, tenant.id, "streaming", now, recorded)
    return _response(session_id, entries, results)


async def _read_batch(
    body: MultipartBody,
    blobs: BlobStore,
    tenant: TenantRef,
    rules: UploadRules,
    most: int,
    entries: list[_Entry],
    values: dict[str, Any],
) -> None:
    """Consume the body: each file part to S3, finished as the part ends (a file over the limit or of refused
    content is rejected and its remaining bytes dropped), text fields validated as they complete."""
    text: FieldCollector | None = None
    current: _Entry | None = None
    async for event in form_events(body.stream, body.boundary, max_parts=most + _FIELD_PARTS):
        if isinstance(event, PartStart):
            text, current = None, None
            if event.name in ("files", "file") and event.filename is not None:
                if len(entries) == most:
                    raise InvalidInput(f"at most {most} files per batch on the {tenant.tier} tier", field="files")
                file_id = uuid.uuid4()
                incoming = IncomingFile(blobs, original_key(tenant.id, file_id), safe_filename(event.filename), rules)
                current = _Entry(file_id, incoming)
                entries.append(current)
            else:
                text = FieldCollector(event.name)
        elif isinstance(event, PartEnd):
            if text is not None and (parsed := parse_field(text.name, text.text())) is not None:
                values[parsed[0]] = parsed[1]
            if current is not None and current.error is None:
                await current.incoming.store()  # its last part's buffer is freed now, not at the form's end
            text, current = None, None
        elif text is not None:
            text.add(event)
        elif current is not None and current.error is None:
            try:
                await current.incoming.add(event)
            except (TooLarge, UnsupportedMedia) as error:
                await current.reject(error)


async def _record(
    entry: _Entry, tenant: TenantRef, options: UploadOptions, rules: UploadRules
) -> BatchFileResult | None:
    """The entry's file recorded with its jobs (in the session's transaction), or None when it is rejected."""
    if entry.error is None:
        try:
            stored = await record_incoming(entry.incoming, entry.file_id, tenant, lambda: options, rules, charged=False)
        except UnsupportedMedia as error:
            await entry.reject(error)
        else:
            shown = upload_response(stored, entry.started)
            same = {name: getattr(shown, name) for name in _AS_UPLOADED}
            return BatchFileResult(filename=entry.incoming.filename, error=None, **same)
    return None


def _session_file(entry: _Entry, result: BatchFileResult | None) -> sessions.SessionFile:
    filename = entry.incoming.filename
    if result is None:
        return sessions.SessionFile(filename, sessions.REJECTED, None, entry.error.detail if entry.error else None)
    return sessions.SessionFile(filename, sessions.SKIPPED if result.skipped else sessions.ACCEPTED, result.file_id)


def _response(session_id: uuid.UUID, entries: list[_Entry], results: list[BatchFileResult]) -> BatchUploadResponse:
    rejections = [
        BatchRejection(entry.incoming.filename, entry.error.detail, status_of(entry.error)[1])
        for entry in entries
        if entry.error is not None
    ]
    if not results:
        status = "rejected"
    elif rejections:
        status = "partial"
    else:
        status = "processing" if any(result.status == "processing" for result in results) else "completed"
    return BatchUploadResponse(
        session_id=session_id,
        total_files=len(entries),
        accepted_files=len(results),
        rejected_files=len(rejections),
        status=status,
        immediate_results=results,
        status_url=f"/api/v2/files/sessions/{session_id}/status",
        websocket_channel=sessions.progress_channel(session_id),
        rejections=rejections or None,
    )
