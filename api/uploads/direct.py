"""Direct uploads: the bytes go from the client straight to S3 through presigned URLs, and the API only keeps the
intent, checks the parts against S3 and, on `complete`, reads the object back once to verify its SHA-256 and inspect
its content exactly as a streamed upload is inspected, before recording the file and queueing its processing.

Verification runs inside the `complete` request: it reads at about the speed of a plain S3 GET (benchmarks/
direct_upload.py), so a few GB fit a client's timeout; the intent shows VERIFYING meanwhile, and a second `complete`
is refused rather than read twice."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from botocore.exceptions import ClientError

from api.schemas.direct_uploads import (
    GIB,
    MIB,
    DirectUploadAborted,
    DirectUploadCompleted,
    DirectUploadRequest,
    DirectUploadStatus,
    DuplicateUpload,
    MultipartUpload,
    PartConfirmed,
    PartConfirmRequest,
    PartRetryUrl,
    PartUrl,
    SingleShotUpload,
)
from api.uploads.fields import UploadOptions, build_options, clean_tags, parse_field, safe_filename
from api.uploads.intake import ContentCheck, NewFile, record_file
from pipelines.intake.plan import NewFilePlan
from store import files, quotas, sessions, upload_intents
from store.blob_store import BlobStore
from store.database import transaction
from store.errors import Conflict, DomainError, InvalidInput
from store.keys import original_key
from store.rows import UploadIntentRow
from store.settings import Settings
from store.tenants import TenantRef
from store.upload_intents import COMPLETED, FAILED, PENDING, UPLOADED

SINGLE_SHOT_MAX_BYTES = 5 * GIB  # S3's largest single PUT
MULTIPART_MAX_BYTES = 5 * 1024 * GIB  # S3's largest object
MAX_PARTS = 10_000
MULTIPART_ABOVE_BYTES = 100 * MIB  # the mode picked when the client names none
DEFAULT_PART_BYTES = 8 * MIB
READ_CHUNK_BYTES = 1 * MIB  # the read-back's block: memory per `complete` stays a few times this


async def create_intent(
    request: DirectUploadRequest, tenant: TenantRef, settings: Settings, blobs: BlobStore
) -> SingleShotUpload | MultipartUpload | DuplicateUpload:
    """Validate the request and answer where to send the bytes (or that the tenant already has them)."""
    options = _options(request)
    mode = request.upload_mode or _mode_by_size(request)
    part_size, total_parts = _layout(request, mode)
    sha256 = request.claimed_file_hash.lower()
    media_type = claimed_media_type(request.content_type)
    if options.skip_duplicates and (existing := await files.find_by_sha256(tenant.id, sha256)) is not None:
        detail = "the tenant already has a file with this SHA-256: nothing to upload"
        return DuplicateUpload(None, mode, media_type, True, existing, detail)
    now = datetime.now(UTC)
    seconds = settings.storage.direct_upload_seconds
    expires_at = now + timedelta(seconds=seconds)
    file_id = uuid.uuid4()
    key = original_key(tenant.id, file_id)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "tenant": tenant.id,
        "upload_mode": mode,
        "status": PENDING,
        "filename": safe_filename(request.filename),
        "content_type": request.content_type,
        "media_type": media_type,
        "size_bytes": request.size_bytes,
        "claimed_file_hash": sha256,
        "part_size_bytes": part_size,
        "total_parts": total_parts,
        "object_key": key,
        "file_id": file_id,
        "options": msgspec.to_builtins(dataclasses.asdict(options)),
        "created_at": now,
        "expires_at": expires_at,
    }
    s3_upload_id: str | None = None
    try:
        async with transaction():  # admitted (a slot, its credits) together with the intent that holds them
            await quotas.admit_intent(tenant.id, file_id, media_type == "video", settings.quotas.busy_retry_seconds)
            if mode == "multipart":
                s3_upload_id = await blobs.start_multipart(key, request.content_type)
            intent = await upload_intents.create({**values, "s3_upload_id": s3_upload_id})
    except BaseException:
        if s3_upload_id is not None:
            await blobs.discard_upload(key, s3_upload_id)
        raise
    if s3_upload_id is None:
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        url = await blobs.presigned_put(key, seconds, request.size_bytes, request.content_type, checksum)
        headers = {
            "Content-Type": request.content_type,
            "x-amz-checksum-sha256": checksum,
            "x-amz-sdk-checksum-algorithm": "SHA256",
        }
        return SingleShotUpload(
            intent.id, mode, media_type, "PUT", url, headers, key, expires_at, request.size_bytes, blobs.bucket
        )
    assert part_size is not None and total_parts is not None
    urls = [
        PartUrl(number, await blobs.presigned_part(key, s3_upload_id, number, seconds), expires_at)
        for number in range(1, total_parts + 1)
    ]
    return MultipartUpload(
        intent.id, mode, media_type, s3_upload_id, key, urls, part_size, total_parts, expires_at, blobs.bucket
    )


def _mode_by_size(request: DirectUploadRequest) -> str:
    """Multipart above 100 MiB, or when the client names a part size."""
    by_size = request.size_bytes > MULTIPART_ABOVE_BYTES or request.part_size_bytes is not None
    return "multipart" if by_size else "single_shot"


def claimed_media_type(content_type: str) -> str:
    """The media type the client's Content-Type suggests; the file's own is detected from its bytes at completion."""
    major = content_type.split("/", 1)[0].lower()
    return major if major in ("image", "video") else "document"


def _options(request: DirectUploadRequest) -> UploadOptions:
    """The streaming upload's optional fields, under the same rules."""
    values: dict[str, Any] = {
        "tags": clean_tags(request.tags),
        "folder_id": request.folder_id,
        "project_id": request.project_id,
        "skip_duplicates": request.skip_duplicates,
        "storage_target": request.storage_target,
        "auto_describe": request.auto_describe,
        "custom_schema_id": request.custom_schema_id,
        "compliance_type": request.compliance_type,
        "compliance_image_type": request.compliance_image_type,
    }
    for name in ("title", "content_category", "compliance_standard"):
        text = getattr(request, name)
        if text is not None and (parsed := parse_field(name, text)) is not None:
            values[name] = parsed[1]
    return build_options(values)


def _layout(request: DirectUploadRequest, mode: str) -> tuple[int | None, int | None]:
    """The part size and count of a multipart upload (None, None for a single PUT), within S3's limits."""
    size = request.size_bytes
    if mode == "single_shot":
        if size > SINGLE_SHOT_MAX_BYTES:
            raise InvalidInput("single_shot uploads are at most 5 GiB; use multipart", field="size_bytes")
        return None, None
    if size > MULTIPART_MAX_BYTES:
        raise InvalidInput("uploads are at most 5 TiB", field="size_bytes")
    part_size = request.part_size_bytes or max(DEFAULT_PART_BYTES, math.ceil(size / MAX_PARTS / MIB) * MIB)
    total_parts = math.ceil(size / part_size)
    if total_parts > MAX_PARTS:
        raise InvalidInput(f"{total_parts} parts: at most {MAX_PARTS}; use larger parts", field="part_size_bytes")
    return part_size, total_parts


def refused_request(status: int, code: str) -> bool:
    """A refusal of a new intent's values: the same request is always refused so, and a replay answers it."""
    return code == "validation_error"


# Refusals of `complete` after which the intent is FAILED and its object gone: the same call could only be refused
# again, so a replay answers them as they were. The others (a part missing, nothing uploaded yet) may pass later.
_FINAL_CODES = frozenset({"hash_mismatch", "size_mismatch", "parts_refused"})


def final_refusal(status: int, code: str) -> bool:
    return status == 415 or code in _FINAL_CODES


async def intent_status(tenant: TenantRef, intent_id: uuid.UUID, blobs: BlobStore) -> DirectUploadStatus:
    intent = await upload_intents.get(tenant.id, intent_id)
    status = intent.status
    if intent.upload_mode == "single_shot" and status == PENDING and await blobs.size_of(intent.object_key):
        status = UPLOADED  # the PUT went through; nothing tells the API but the object itself
    multipart = intent.total_parts is not None
    return DirectUploadStatus(
        upload_id=intent.id,
        upload_mode=intent.upload_mode,
        status=status,
        media_type=intent.media_type,
        object_key=intent.object_key,
        filename=intent.filename,
        size_bytes=intent.size_bytes,
        total_parts=intent.total_parts,
        parts_confirmed=len(intent.parts) if multipart else None,
        progress_percent=_progress(intent) if multipart else None,
        created_at=intent.created_at,
        expires_at=intent.expires_at,
        confirmed_at=intent.confirmed_at,
        error_message=intent.error_message,
    )


def _progress(intent: UploadIntentRow) -> float:
    return round(100 * len(intent.parts) / (intent.total_parts or 1), 2)


async def confirm_part(
    tenant: TenantRef, intent_id: uuid.UUID, part: PartConfirmRequest, blobs: BlobStore
) -> PartConfirmed:
    """Record a part only as S3 holds it: its ETag and size from ListParts, so a part never sent is refused."""
    intent = _multipart(await upload_intents.get(tenant.id, intent_id), part.part_number)
    assert intent.s3_upload_id is not None
    held = await blobs.uploaded_part(intent.object_key, intent.s3_upload_id, part.part_number)
    if held is None:
        raise Conflict(f"storage has no part {part.part_number} of this upload", code="part_not_uploaded")
    etag, size = held
    if etag.strip('"') != part.etag.strip().strip('"') or size != part.size_bytes:
        raise Conflict(
            f"part {part.part_number} in storage has ETag {etag} and {size} bytes, not those confirmed",
            code="part_mismatch",
        )
    if size != _part_bytes(intent, part.part_number):
        raise Conflict(
            f"part {part.part_number} must be {_part_bytes(intent, part.part_number)} bytes; it is {size}",
            code="part_size_mismatch",
        )
    confirmed = await upload_intents.confirm_part(tenant.id, intent.id, part.part_number, etag, size, datetime.now(UTC))
    total = intent.total_parts or 0
    return PartConfirmed(intent.id, part.part_number, len(confirmed.parts), total, _progress(confirmed))


def _part_bytes(intent: UploadIntentRow, number: int) -> int:
    part_size, total = intent.part_size_bytes or 0, intent.total_parts or 0
    return part_size if number < total else intent.size_bytes - part_size * (total - 1)


async def retry_part(
    tenant: TenantRef, intent_id: uuid.UUID, number: int, settings: Settings, blobs: BlobStore
) -> PartRetryUrl:
    """A fresh URL for one part; its earlier confirmation no longer counts."""
    intent = _multipart(await upload_intents.get(tenant.id, intent_id), number)
    assert intent.s3_upload_id is not None
    await upload_intents.forget_part(tenant.id, intent.id, number)
    seconds = settings.storage.direct_upload_seconds
    url = await blobs.presigned_part(intent.object_key, intent.s3_upload_id, number, seconds)
    return PartRetryUrl(intent.id, number, url, datetime.now(UTC) + timedelta(seconds=seconds))


def _multipart(intent: UploadIntentRow, number: int) -> UploadIntentRow:
    if intent.upload_mode != "multipart":
        raise Conflict("this upload is single_shot: it has no parts", code="not_multipart")
    if number > (intent.total_parts or 0):
        raise InvalidInput(f"this upload has {intent.total_parts} parts", field="part_number")
    _open(intent)
    return intent


def _open(intent: UploadIntentRow) -> None:
    if intent.status not in upload_intents.OPEN:
        raise Conflict(f"upload {intent.id} is {intent.status}, no longer open", code="upload_not_open")
    if intent.expires_at <= datetime.now(UTC):
        raise Conflict(f"upload {intent.id} expired at {intent.expires_at.isoformat()}", code="upload_expired")


async def complete(
    tenant: TenantRef, intent_id: uuid.UUID, settings: Settings, blobs: BlobStore
) -> DirectUploadCompleted:
    """Assemble the object, verify and inspect it, record the file (or find the tenant's copy) and queue its
    processing. A refused object (wrong hash or size, refused content) is deleted and the intent FAILED; a failure
    of storage leaves the intent as it was, to complete again."""
    intent = await upload_intents.get(tenant.id, intent_id)
    if intent.status == COMPLETED:
        return _completed(intent, "completed")
    _open(intent)
    missing = [number for number in range(1, (intent.total_parts or 0) + 1) if number not in intent.parts]
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise InvalidInput(f"parts not confirmed: {shown}", field="parts", code="missing_parts")
    await upload_intents.claim(tenant.id, intent.id)
    try:
        await _assemble(intent, blobs)
        new = await _verified(intent, blobs)
        existing, plan = await _record(intent, new, tenant, settings.models.describe.model is not None)
    except DomainError as exc:
        if exc.code == "upload_missing":
            await upload_intents.settle(intent.id, intent.status)
        else:
            await blobs.discard_upload(intent.object_key, intent.s3_upload_id)
            await upload_intents.settle(intent.id, FAILED, error_message=exc.detail)
            await quotas.release(intent.file_id)
        raise
    except BaseException:
        await upload_intents.settle(intent.id, intent.status)
        raise
    if existing is not None:
        await blobs.discard_upload(intent.object_key, None)
    done = {"file_id": existing or new.id, "deduplicated": existing is not None, "media_type": new.detected.media_type}
    finished = msgspec.structs.replace(intent, status=COMPLETED, **done)
    return _completed(finished, "processing" if plan.steps and existing is None else "completed")


async def _record(
    intent: UploadIntentRow, new: NewFile, tenant: TenantRef, describes: bool
) -> tuple[uuid.UUID | None, NewFilePlan]:
    """In one transaction: the file row and its jobs (or the tenant's copy), the credits the intent reserved
    settled by what was recorded, an upload session of the one file, as every upload has, and the intent
    COMPLETED (a 409, recording nothing, when the upkeep failed it meanwhile)."""
    async with transaction():
        existing, plan = await record_file(new, tenant, describes)
        done = {"file_id": existing or new.id, "deduplicated": existing is not None}
        if not await upload_intents.finish(
            intent.id, completed_at=datetime.now(UTC), media_type=new.detected.media_type, **done
        ):
            dead = "the upload's verification was taken for dead and failed; upload again"
            raise Conflict(dead, code="upload_not_open")
        video = new.detected.media_type == "video"
        await quotas.settle_direct_upload(tenant.id, new.id, recorded=existing is None, video=video)
        entry = sessions.SessionFile(
            intent.filename, sessions.ACCEPTED if existing is None else sessions.SKIPPED, existing or new.id
        )
        await sessions.create(uuid.uuid4(), tenant.id, "presigned", datetime.now(UTC), [entry])
    return existing, plan


def _completed(intent: UploadIntentRow, status: str) -> DirectUploadCompleted:
    return DirectUploadCompleted(
        upload_id=intent.id,
        file_id=intent.file_id,
        media_type=intent.media_type,
        filename=intent.filename,
        object_key=intent.object_key,
        size_bytes=intent.size_bytes,
        deduplicated=intent.deduplicated,
        status=status,
    )


async def _assemble(intent: UploadIntentRow, blobs: BlobStore) -> None:
    """The object whole in S3: a multipart upload completed from the parts the server tracked (once: a retried
    `complete` finds the object), a single PUT's object present, of the claimed size."""
    size = await blobs.size_of(intent.object_key)
    if size is None and intent.s3_upload_id is not None:
        parts = {number: part.etag for number, part in intent.parts.items()}
        try:
            await blobs.complete_multipart(intent.object_key, intent.s3_upload_id, parts)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise Conflict(f"storage could not join the parts ({code}); send them again", code="parts_refused") from exc
        size = await blobs.size_of(intent.object_key)
    if size is None:
        raise Conflict("nothing was uploaded to the presigned URL yet", code="upload_missing")
    if size != intent.size_bytes:
        raise Conflict(f"the object is {size} bytes, not the {intent.size_bytes} claimed", code="size_mismatch")


async def _verified(intent: UploadIntentRow, blobs: BlobStore) -> NewFile:
    """Read the object back once: its SHA-256 against the claimed one, its content as a streamed upload's."""
    check = ContentCheck(intent.filename)
    feeding: asyncio.Future[None] | None = None  # the previous block, hashed and inspected while this one is read
    try:
        async for block in _blocks(blobs, intent.object_key):
            if feeding is not None:
                await feeding
            feeding = asyncio.ensure_future(check.feed_in_threads(block))
        if feeding is not None:
            await feeding
    finally:
        if feeding is not None and not feeding.done():
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
    if check.sha256 != intent.claimed_file_hash:
        raise Conflict(
            f"the uploaded bytes have SHA-256 {check.sha256}, not the claimed {intent.claimed_file_hash}",
            code="hash_mismatch",
        )
    detected = check.identify()
    options = msgspec.convert(intent.options, UploadOptions)
    return NewFile(
        intent.file_id, intent.filename, check.size, check.sha256, intent.object_key, "PRESIGNED", detected, options
    )


async def _blocks(blobs: BlobStore, key: str) -> AsyncIterator[bytes]:
    """The object in blocks of at least READ_CHUNK_BYTES (the last shorter). S3's answer arrives in pieces of about
    256 KiB: joining them costs one copy at memory speed and saves a worker-thread hop and a numpy search per
    piece."""
    pieces: list[bytes] = []
    size = 0
    async for piece in blobs.read_chunks(key, READ_CHUNK_BYTES):
        pieces.append(piece)
        size += len(piece)
        if size >= READ_CHUNK_BYTES:
            yield b"".join(pieces)
            pieces, size = [], 0
    if pieces:
        yield b"".join(pieces)


async def abort(tenant: TenantRef, intent_id: uuid.UUID, reason: str | None, blobs: BlobStore) -> DirectUploadAborted:
    """Abort an open intent: its multipart upload aborted, any object deleted and its reserved credits refunded."""
    before = await upload_intents.close(tenant.id, intent_id, f"aborted: {reason}" if reason else "aborted")
    try:
        await blobs.discard_upload(before.object_key, before.s3_upload_id)
    except BaseException:
        await upload_intents.settle(before.id, before.status, error_message=None)
        raise
    await quotas.release(before.file_id)
    return DirectUploadAborted(before.id, True, reason)
