"""The streaming upload (POST /files/upload, and POST /files/analyze under its own rules): the body streams to
S3 while it is hashed and inspected; the file row is written only once the bytes are safely stored, and any
failure removes what was written."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from api.schemas.files import FileUploadResponse
from api.uploads.admission import admitted
from api.uploads.fields import UploadOptions, build_options, checked, parse_field, safe_filename
from api.uploads.form import FieldCollector, MultipartBody, PartEnd, PartStart, form_events
from api.uploads.intake import ContentCheck, NewFile, record_file
from pipelines.intake.plan import ANALYSIS_STEPS, THUMBNAIL_STEPS
from pipelines.intake.sniff import Detected
from store import quotas
from store.blob_store import BlobStore, BlobStoreError
from store.database import transaction
from store.errors import InvalidInput, TooLarge, Unavailable, UnsupportedMedia
from store.keys import original_key
from store.settings import QuotaSettings, Settings
from store.tenants import TenantRef

DIRECT_UPLOADS = "/api/v2/files/direct-uploads"
USE_DIRECT_UPLOADS = {
    "endpoint": DIRECT_UPLOADS,
    "message": "use the presigned direct-upload flow for files over the streaming limit",
}
# Room for the form's text fields around the file in a request's Content-Length.
FORM_ALLOWANCE = 1024 * 1024
DRAIN_SECONDS = 30.0


@dataclass(frozen=True)
class UploadRules:
    """What a route takes through the streaming upload; the defaults are those of /files/upload."""

    max_bytes: int
    # Where the 413 sends a client with a larger file.
    larger_files: Mapping[str, str] = dataclasses.field(default_factory=lambda: USE_DIRECT_UPLOADS)
    formats: Collection[str] | None = None  # the detected formats accepted ("pdf", "jpeg"...); None: all
    # The route's own form fields and their parsers (a ValueError is the field's 422).
    fields: Mapping[str, Callable[[str], Any]] = dataclasses.field(default_factory=dict)
    describes: bool = False  # a describe model is configured: images that want a description get one


@dataclass(frozen=True)
class StoredUpload:
    """A stored upload: the new file, or the tenant's existing copy when it was skipped as a duplicate."""

    file_id: uuid.UUID
    skipped: bool
    detected: Detected
    options: UploadOptions
    steps: tuple[str, ...]
    fields: dict[str, Any]  # the route's own fields, parsed


def too_large(rules: UploadRules) -> TooLarge:
    return TooLarge(
        f"the file exceeds the streaming upload limit of {rules.max_bytes // (1024 * 1024)} MB",
        suggestion=dict(rules.larger_files),
    )


class IncomingFile:
    """The `file` part: hashed, inspected and written to S3 as it arrives, capped in size."""

    def __init__(self, blobs: BlobStore, key: str, filename: str, rules: UploadRules) -> None:
        self.filename = filename
        self.key = key
        self._rules = rules
        self._check = ContentCheck(filename)
        self._writer = blobs.writer(key)
        self._stored = False

    @property
    def size(self) -> int:
        return self._check.size

    async def add(self, chunk: bytes) -> None:
        if self.size + len(chunk) > self._rules.max_bytes:
            raise too_large(self._rules)
        self._check.feed(chunk)
        await self._writer.write(chunk)

    def identify(self) -> Detected:
        return self._check.identify()

    @property
    def sha256(self) -> str:
        return self._check.sha256

    async def store(self) -> None:
        """Finish the object in S3, once (a batch finishes each file as its part ends, and records it later)."""
        if not self._stored:
            await self._writer.close()
            self._stored = True

    async def discard(self) -> None:
        await asyncio.shield(self._writer.abort())


@dataclass
class _Form:
    file: IncomingFile | None = None
    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    own: dict[str, Any] = dataclasses.field(default_factory=dict)  # values of the route's own fields


async def _read_form(
    stream: AsyncIterator[bytes], boundary: str, blobs: BlobStore, key: str, rules: UploadRules, form: _Form
) -> None:
    """Consume the body: the file part goes to S3, text fields are validated as they complete."""
    field: FieldCollector | None = None
    async for event in form_events(stream, boundary):
        if isinstance(event, PartStart):
            if event.name == "file" and event.filename is not None:
                if form.file is not None:
                    raise InvalidInput("only one file per request; use /api/v2/files/upload/batch", field="file")
                form.file = IncomingFile(blobs, key, safe_filename(event.filename), rules)
                field = None
            else:
                field = FieldCollector(event.name)
        elif isinstance(event, PartEnd):
            if field is not None and field.name in rules.fields:
                form.own[field.name] = checked(field.name, field.text(), rules.fields[field.name])
            elif field is not None and (parsed := parse_field(field.name, field.text())) is not None:
                form.values[parsed[0]] = parsed[1]
            field = None
        elif field is not None:
            field.add(event)
        elif form.file is not None:
            await form.file.add(event)


async def drain(stream: AsyncIterator[bytes], budget: int) -> None:
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
    body: MultipartBody, tenant: TenantRef, settings: Settings, blobs: BlobStore
) -> FileUploadResponse:
    started = time.perf_counter()
    rules = UploadRules(settings.storage.max_upload_bytes, describes=settings.models.describe.model is not None)
    return upload_response(await store_upload(body, tenant, blobs, rules, settings.quotas), started)


async def store_upload(
    body: MultipartBody, tenant: TenantRef, blobs: BlobStore, rules: UploadRules, limits: QuotaSettings
) -> StoredUpload:
    """Stream the form's file to S3 under the route's rules, then record it (or find its duplicate), holding one of
    the tenant's slots for uploads in flight meanwhile."""
    limit = rules.max_bytes
    if body.content_length is not None and body.content_length > limit + FORM_ALLOWANCE:
        await drain(body.stream, limit)
        raise too_large(rules)
    async with admitted(tenant, limits, lambda: drain(body.stream, limit)):
        return await _store_form(body, tenant, blobs, rules)


async def _store_form(body: MultipartBody, tenant: TenantRef, blobs: BlobStore, rules: UploadRules) -> StoredUpload:
    limit = rules.max_bytes
    file_id = uuid.uuid4()
    form = _Form()
    async with discarded_on_failure(lambda: [form.file] if form.file is not None else []):
        try:
            await _read_form(body.stream, body.boundary, blobs, original_key(tenant.id, file_id), rules, form)
        except TooLarge:
            await drain(body.stream, limit)
            raise
        if form.file is None:
            raise InvalidInput("a file part named 'file' is required", field="file")
        stored = await record_incoming(form.file, file_id, tenant, lambda: build_options(form.values), rules)
    return dataclasses.replace(stored, fields=form.own)


@contextlib.asynccontextmanager
async def discarded_on_failure(incoming: Callable[[], Iterable[IncomingFile]]) -> AsyncIterator[None]:
    """An upload that fails leaves nothing behind: the objects of the files `incoming` names then are removed, and
    a storage failure is the client's 503."""
    try:
        yield
    except BaseException as exc:
        for file in incoming():
            await file.discard()
        if isinstance(exc, BlobStoreError):
            raise Unavailable(f"storage is unavailable: {exc}") from exc
        raise


async def record_incoming(
    incoming: IncomingFile,
    file_id: uuid.UUID,
    tenant: TenantRef,
    options_of: Callable[[], UploadOptions],
    rules: UploadRules,
    *,
    charged: bool = True,
) -> StoredUpload:
    """A file received whole: identified and checked (its content before the form's options, read then), finished
    in S3 and recorded with its jobs and, unless the caller charges for it (`charged` False), its credit (and a
    video's analysis's) spent in the same transaction; when it is skipped as a duplicate, its object is removed
    again, and nothing is spent."""
    detected = incoming.identify()
    _check_format(detected, rules)
    options = options_of()
    await incoming.store()
    new = NewFile(
        file_id, incoming.filename, incoming.size, incoming.sha256, incoming.key, "STREAMING", detected, options
    )
    async with transaction():
        existing, plan = await record_file(new, tenant, rules.describes)
        if existing is None and charged:
            await quotas.charge(tenant.id, 1, [file_id] if detected.media_type == "video" else [])
    if existing is not None:
        await incoming.discard()
    return StoredUpload(existing or file_id, existing is not None, detected, options, plan.steps, {})


def _check_format(detected: Detected, rules: UploadRules) -> None:
    if rules.formats is not None and detected.format not in rules.formats:
        accepted = ", ".join(name.upper() for name in rules.formats)
        raise UnsupportedMedia(f"only {accepted} files are accepted here; this file is {detected.content_type}")


def upload_response(stored: StoredUpload, started: float) -> FileUploadResponse:
    skipped, steps, detected = stored.skipped, stored.steps, stored.detected
    queued = bool(steps) and not skipped
    return FileUploadResponse(
        file_id=stored.file_id,
        upload_method="STREAMING",
        status="skipped" if skipped else "processing" if queued else "completed",
        processing_time_ms=round((time.perf_counter() - started) * 1000, 1),
        upload_completed=True,
        thumbnail_generation_started=queued and any(step in THUMBNAIL_STEPS for step in steps),
        analysis_started=queued and any(step in ANALYSIS_STEPS for step in steps),
        skipped=skipped,
        existing_file_id=stored.file_id if skipped else None,
        storage_target=stored.options.storage_target,
        media_type=detected.media_type,
        document_type=detected.document_type,
        text_extraction_status=None if skipped or detected.media_type != "document" else "pending",
    )
