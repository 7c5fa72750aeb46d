"""Soft-deleted files past retention lose their objects, then their rows. Objects go first, so a
crash in between leaves a row that the next run purges again (S3 deletes are idempotent). Exports
(`exports/...`, api/export.py) are deleted once older than their own retention, idempotency keys once expired."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from store import files, idempotency_keys, quotas
from store.blob_store import BlobStore
from store.keys import EXPORTS_PREFIX, file_prefix
from store.settings import Settings

log = logging.getLogger(__name__)


async def purge_expired(blobs: BlobStore, retention_days: int, batch: int = 100) -> int:
    """Remove every file deleted more than `retention_days` ago; returns how many."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    purged = 0
    while rows := await files.expired(cutoff, batch):
        for row in rows:
            await blobs.delete_prefix(file_prefix(row.object_key))
            # A video deleted before its analysis ended never had it: its reserved credits go back.
            await quotas.settle_video_reservation(row.id, succeeded=False)
        await files.delete_rows([row.id for row in rows])
        purged += len(rows)
    if purged:
        log.info("purged %d files deleted before %s", purged, cutoff.isoformat())
    return purged


async def purge_expired_exports(blobs: BlobStore, retention: timedelta, now: datetime | None = None) -> int:
    """Delete every export written more than `retention` before `now` (default: this moment); returns how many."""
    cutoff = (now or datetime.now(UTC)) - retention
    purged = await blobs.delete_older(EXPORTS_PREFIX, cutoff)
    if purged:
        log.info("purged %d exports written before %s", purged, cutoff.isoformat())
    return purged


async def purge_idempotency_keys(hours: int, now: datetime | None = None) -> int:
    """Delete the idempotency keys used more than `hours` before `now` (default: this moment); how many."""
    purged = await idempotency_keys.purge((now or datetime.now(UTC)) - timedelta(hours=hours))
    if purged:
        log.info("purged %d expired idempotency keys", purged)
    return purged


async def purge_forever(blobs: BlobStore, settings: Settings, stop: asyncio.Event) -> None:
    """The server's periodic purge; a failed round is logged and retried next interval."""
    while not stop.is_set():
        try:
            await purge_expired(blobs, settings.retention.soft_delete_days)
            await purge_expired_exports(blobs, timedelta(hours=settings.retention.export_hours))
            await purge_idempotency_keys(settings.api.idempotency_hours)
        except Exception:
            log.exception("purge round failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.retention.purge_interval_seconds)
