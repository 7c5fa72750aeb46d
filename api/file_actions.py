"""What the file routes do beyond a single query: edits, deletes, restores, batch deletes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from msgspec import UNSET

from api.schemas.files import (
    BatchDeleteEntry,
    BatchDeleteRequest,
    BatchDeleteResult,
    BatchDeleteSummary,
    FileDeleted,
    FilePatch,
    FilePatchResult,
    FileRestored,
)
from api.shaping import shaped
from api.uploads.fields import clean_tags
from store import files
from store.errors import Conflict, InvalidInput, NotFound
from store.tenants import TenantRef


def _changes(patch: FilePatch) -> dict[str, Any]:
    """Column changes for the fields present (lengths are checked by the schema)."""
    changes: dict[str, Any] = {}
    if patch.title is not UNSET:
        changes["title"] = (patch.title or "").strip() or None
    if patch.tags is not UNSET:
        changes["tags"] = clean_tags(patch.tags)
    if patch.user_description is not UNSET:
        changes["user_description"] = patch.user_description
    return changes


async def patch_file(tenant: TenantRef, ref: str, patch: FilePatch) -> FilePatchResult:
    file_id = await files.resolve_id(tenant.id, ref)
    changes = _changes(patch)
    changes["updated_at"] = datetime.now(UTC)
    row = await files.update_file(tenant.id, file_id, changes)
    return shaped(FilePatchResult, row)


async def delete_file(tenant: TenantRef, ref: str) -> FileDeleted:
    file_id = await files.resolve_id(tenant.id, ref)
    deleted_at = await files.soft_delete(tenant.id, file_id, datetime.now(UTC))
    return FileDeleted(id=file_id, deleted_at=deleted_at)


async def restore_file(tenant: TenantRef, ref: str, retention_days: int) -> FileRestored:
    now = datetime.now(UTC)
    try:
        file_id = uuid.UUID(ref)
    except ValueError:
        file_id = await files.resolve_id(tenant.id, ref, deleted=True)
    await files.restore(tenant.id, file_id, not_before=now - timedelta(days=retention_days), now=now)
    return FileRestored(id=file_id, restored_at=now)


def _unique(ids: list[uuid.UUID]) -> list[uuid.UUID]:
    if len(set(ids)) != len(ids):
        raise InvalidInput("ids must be unique", field="file_ids")
    return ids


async def batch_delete(tenant: TenantRef, request: BatchDeleteRequest) -> BatchDeleteResult:
    """Each file is deleted or reported on its own, so one bad id never blocks the rest."""
    deleted: list[BatchDeleteEntry] = []
    skipped: list[BatchDeleteEntry] = []
    failed: list[BatchDeleteEntry] = []
    for file_id in _unique(request.file_ids):
        key = str(file_id)
        try:
            at = await files.soft_delete(tenant.id, file_id, datetime.now(UTC))
            deleted.append(BatchDeleteEntry(id=key, status="deleted", message=None, deleted_at=at))
        except Conflict as exc:
            failed.append(BatchDeleteEntry(id=key, status="failed", message=exc.detail, deleted_at=None))
        except NotFound:
            try:
                await files.resolve_id(tenant.id, key, deleted=True)
                skipped.append(
                    BatchDeleteEntry(id=key, status="skipped", message="File already deleted", deleted_at=None)
                )
            except NotFound:
                failed.append(BatchDeleteEntry(id=key, status="failed", message="File not found", deleted_at=None))
    summary = BatchDeleteSummary(
        total=len(request.file_ids), deleted=len(deleted), skipped=len(skipped), failed=len(failed)
    )
    return BatchDeleteResult(deleted=deleted, skipped=skipped, failed=failed, summary=summary)
