"""Upload intents: the record of a direct upload, always scoped to one tenant. An intent is PENDING until its bytes
are in S3 (UPLOADED once every part of a multipart upload is confirmed), VERIFYING while one `complete` reads the
object back, then COMPLETED (it became a file, or found the tenant's copy) or FAILED (refused or aborted). An intent
left VERIFYING by a process that died is settled by the engines' upkeep (pipelines/upload_reaper.py)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from store.errors import Conflict, NotFound
from store.rows import UploadIntentRow, as_row
from store.tables import UploadIntent

PENDING, UPLOADED, VERIFYING, COMPLETED, FAILED = "PENDING", "UPLOADED", "VERIFYING", "COMPLETED", "FAILED"
OPEN = (PENDING, UPLOADED)  # what a client may still send parts to, complete or abort


async def create(values: dict[str, Any]) -> UploadIntentRow:
    await UploadIntent.insert(UploadIntent(**values))
    return await get(values["tenant"], values["id"])


async def get(tenant_id: uuid.UUID, intent_id: uuid.UUID) -> UploadIntentRow:
    """The tenant's intent; another tenant's is not found, like a missing one."""
    rows = await UploadIntent.select().where(UploadIntent.id == intent_id, UploadIntent.tenant == tenant_id)
    if not rows:
        raise NotFound(f"upload {intent_id} not found")
    return _row(rows[0])


async def confirm_part(
    tenant_id: uuid.UUID, intent_id: uuid.UUID, number: int, etag: str, size: int, now: datetime
) -> UploadIntentRow:
    """Record a part S3 holds, in one statement (parts confirmed at once all count); the intent is UPLOADED once
    every part is in."""
    part = json.dumps({str(number): {"etag": etag, "size": size}})
    rows = await UploadIntent.raw(
        """
        UPDATE upload_intent SET parts = parts || {}::jsonb,
            status = CASE WHEN (SELECT count(*) FROM jsonb_object_keys(parts || {}::jsonb)) = total_parts
                THEN 'UPLOADED' ELSE status END,
            confirmed_at = {}
        WHERE id = {} AND tenant = {} AND status IN ('PENDING', 'UPLOADED')
        RETURNING *
        """,
        part,
        part,
        now,
        intent_id,
        tenant_id,
    )
    if not rows:
        raise _not_open(await get(tenant_id, intent_id))
    return _row(rows[0])


async def forget_part(tenant_id: uuid.UUID, intent_id: uuid.UUID, number: int) -> None:
    """A part about to be sent again is no longer confirmed: its new ETag must be."""
    rows = await UploadIntent.raw(
        "UPDATE upload_intent SET parts = parts - {}, status = 'PENDING' WHERE id = {} AND tenant = {} "
        "AND status IN ('PENDING', 'UPLOADED') RETURNING id",
        str(number),
        intent_id,
        tenant_id,
    )
    if not rows:
        raise _not_open(await get(tenant_id, intent_id))


async def close(tenant_id: uuid.UUID, intent_id: uuid.UUID, error_message: str) -> UploadIntentRow:
    """Abort an open intent (FAILED with the reason); its row as it was before."""
    before = await get(tenant_id, intent_id)
    rows = await UploadIntent.raw(
        "UPDATE upload_intent SET status = 'FAILED', error_message = {} WHERE id = {} AND tenant = {} "
        "AND status IN ('PENDING', 'UPLOADED') RETURNING id",
        error_message,
        intent_id,
        tenant_id,
    )
    if not rows:
        raise _not_open(await get(tenant_id, intent_id))
    return before


async def claim(tenant_id: uuid.UUID, intent_id: uuid.UUID) -> UploadIntentRow:
    """Take an open intent for completing (VERIFYING), so that two `complete` calls never both read it."""
    rows = await UploadIntent.raw(
        "UPDATE upload_intent SET status = 'VERIFYING', claimed_at = now() WHERE id = {} AND tenant = {} "
        "AND status IN ('PENDING', 'UPLOADED') RETURNING *",
        intent_id,
        tenant_id,
    )
    if not rows:
        raise _not_open(await get(tenant_id, intent_id))
    return _row(rows[0])


async def settle(intent_id: uuid.UUID, status: str, **changes: Any) -> None:
    """An intent's outcome (or its return to `status` after a failure the client may retry)."""
    await UploadIntent.update({UploadIntent.status: status, **_by_column(changes)}).where(UploadIntent.id == intent_id)


async def finish(intent_id: uuid.UUID, **changes: Any) -> bool:
    """COMPLETED, in the transaction that records its file, only while it is still VERIFYING: an upkeep that took
    its `complete` for dead and failed it meanwhile wins, and the file is not recorded."""
    rows = (
        await UploadIntent.update({UploadIntent.status: "COMPLETED", **_by_column(changes)})
        .where((UploadIntent.id == intent_id) & (UploadIntent.status == "VERIFYING"))
        .returning(UploadIntent.id)
    )
    return bool(rows)


async def expired(now: datetime, limit: int) -> list[UploadIntentRow]:
    """Open intents of any tenant past their expiry, oldest first."""
    rows = (
        await UploadIntent.select()
        .where(UploadIntent.status.is_in(list(OPEN)), UploadIntent.expires_at < now)
        .order_by(UploadIntent.expires_at)
        .limit(limit)
    )
    return [_row(row) for row in rows]


async def mark_expired(intent_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """FAILED as expired, unless one was completed or aborted meanwhile; the file ids of those marked."""
    rows = (
        await UploadIntent.update({UploadIntent.status: FAILED, UploadIntent.error_message: "expired"})
        .where(UploadIntent.id.is_in(intent_ids), UploadIntent.status.is_in(list(OPEN)))
        .returning(UploadIntent.file_id)
    )
    return [row["file_id"] for row in rows]


async def stuck(now: datetime, grace_seconds: float, bytes_per_second: float, limit: int) -> list[UploadIntentRow]:
    """VERIFYING intents whose `complete` stopped answering (its process died): claimed longer ago than the grace
    plus the time to read their size at `bytes_per_second`, oldest first."""
    rows = await UploadIntent.raw(
        """
        SELECT * FROM upload_intent WHERE status = 'VERIFYING'
            AND (claimed_at IS NULL OR claimed_at + make_interval(secs => {} + size_bytes / {}) < {})
        ORDER BY claimed_at NULLS FIRST LIMIT {}
        """,
        grace_seconds,
        bytes_per_second,
        now,
        limit,
    )
    return [_row(row) for row in rows]


async def recover_completed(intent_id: uuid.UUID) -> bool:
    """COMPLETED if its file row was written before `complete` died (the file exists: only the intent lags)."""
    rows = await UploadIntent.raw(
        """
        UPDATE upload_intent AS intent SET status = 'COMPLETED', media_type = file.media_type, completed_at = now()
        FROM file WHERE intent.id = {} AND intent.status = 'VERIFYING' AND file.id = intent.file_id
        RETURNING intent.id
        """,
        intent_id,
    )
    return bool(rows)


async def fail_stuck(intent_id: uuid.UUID, error_message: str) -> bool:
    """FAILED, unless it left VERIFYING meanwhile or its file row exists (then it is recovered as completed)."""
    rows = await UploadIntent.raw(
        """
        UPDATE upload_intent SET status = 'FAILED', error_message = {}
        WHERE id = {} AND status = 'VERIFYING' AND NOT EXISTS (SELECT 1 FROM file WHERE file.id = upload_intent.file_id)
        RETURNING id
        """,
        error_message,
        intent_id,
    )
    return bool(rows)


async def live_file_ids(file_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """The ids, among `file_ids`, whose objects are still wanted: a file row has it, or an intent not yet settled
    (PENDING, UPLOADED, VERIFYING) will. Any other object under such an id is a leftover."""
    rows = await UploadIntent.raw(
        """
        SELECT file_id AS id FROM upload_intent
            WHERE file_id = ANY({}) AND status IN ('PENDING', 'UPLOADED', 'VERIFYING')
        UNION SELECT id FROM file WHERE id = ANY({})
        """,
        file_ids,
        file_ids,
    )
    return {row["id"] for row in rows}


async def live_multipart(upload_ids: list[str]) -> set[str]:
    """The S3 multipart uploads, among `upload_ids`, of intents not yet settled."""
    rows = await UploadIntent.raw(
        "SELECT s3_upload_id FROM upload_intent WHERE s3_upload_id = ANY({}) "
        "AND status IN ('PENDING', 'UPLOADED', 'VERIFYING')",
        upload_ids,
    )
    return {row["s3_upload_id"] for row in rows}


def _by_column(changes: dict[str, Any]) -> dict[Any, Any]:
    return {UploadIntent._meta.get_column_by_name(name): value for name, value in changes.items()}


def _not_open(intent: UploadIntentRow) -> Conflict:
    return Conflict(f"upload {intent.id} is {intent.status}, no longer open", code="upload_not_open")


def _row(record: Any) -> UploadIntentRow:
    record = dict(record)
    for name in ("options", "parts"):
        if isinstance(record[name], str):
            record[name] = json.loads(record[name])
    record["parts"] = {int(number): part for number, part in record["parts"].items()}
    return as_row(UploadIntentRow, record)
