"""What every upload goes through once its bytes are known, however they arrived (streamed through the API or
sent straight to S3): hashing and content inspection chunk by chunk, then the file row and its first jobs."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api.uploads.fields import UploadOptions
from pipelines.intake.plan import NewFilePlan, plan_new_file
from pipelines.intake.sniff import ContentInspector, Detected, UnsupportedContent
from store import files
from store.errors import UnsupportedMedia
from store.tenants import TenantRef


class ContentCheck:
    """An upload's bytes, seen once in order: their size, SHA-256 and detected type (refusals raise 415)."""

    def __init__(self, filename: str) -> None:
        self._sha = hashlib.sha256()
        self._inspector = ContentInspector(filename)
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._sha.update(chunk)
        _inspect(lambda: self._inspector.feed(chunk))

    async def feed_in_threads(self, chunk: bytes) -> None:
        """`feed`, with the hash and the inspection each in a worker thread at once (hashlib and the inspector's
        numpy search release the GIL): the event loop stays free to read the next chunk meanwhile."""
        self.size += len(chunk)
        hashed = asyncio.to_thread(self._sha.update, chunk)
        await asyncio.gather(hashed, asyncio.to_thread(_inspect, lambda: self._inspector.feed(chunk)))

    def identify(self) -> Detected:
        """The detected type of the whole upload; an empty one is refused."""
        if self.size == 0:
            raise UnsupportedMedia("the file is empty", code="empty_file")
        result: Detected = _inspect(self._inspector.finish)
        return result

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


def _inspect(step: Callable[[], Any]) -> Any:
    try:
        return step()
    except UnsupportedContent as exc:
        raise UnsupportedMedia(exc.reason, code=exc.code) from exc


@dataclass(frozen=True)
class NewFile:
    """A file whose bytes are stored under `object_key`, ready to be recorded."""

    id: uuid.UUID
    filename: str
    size: int
    sha256: str
    object_key: str
    upload_method: str  # STREAMING | PRESIGNED
    detected: Detected
    options: UploadOptions


async def record_file(
    new: NewFile, tenant: TenantRef, describes: bool, *, import_id: uuid.UUID | None = None
) -> tuple[uuid.UUID | None, NewFilePlan]:
    """Write the file row and queue its plan's steps in one transaction; None, or the existing copy's id when the
    upload skips duplicates and the tenant has the same bytes (the caller then removes its object). The steps of a
    file that an import registers (`import_id`) go to the backfill lane, as that import's jobs."""
    detected, options = new.detected, new.options
    plan = plan_new_file(detected.media_type, options.auto_describe, describes)
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": new.id,
        "tenant": tenant.id,
        "media_type": detected.media_type,
        "filename": new.filename,
        "title": options.title,
        "tags": options.tags,
        "size_bytes": new.size,
        "content_type": detected.content_type,
        "format": detected.format,
        "document_type": detected.document_type,
        "sha256": new.sha256,
        "object_key": new.object_key,
        "upload_method": new.upload_method,
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
        **plan.statuses,
    }
    lane = "interactive" if import_id is None else "backfill"
    existing = await files.insert_unless_duplicate(
        values, skip_duplicates=options.skip_duplicates, steps=plan.steps, lane=lane, backfill_id=import_id
    )
    return existing, plan
