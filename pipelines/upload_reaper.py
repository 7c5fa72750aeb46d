"""Expired direct uploads leave nothing behind: an engine upkeep aborts their multipart uploads and deletes any
object a client sent, then marks them FAILED and refunds the credits they reserved (together, in one transaction).
Storage goes first, so a crash in between leaves an intent that the next pass reaps again (aborts and deletes are
idempotent)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from store import quotas, step_objects, upload_intents
from store.database import transaction
from store.step_objects import S3Location

log = logging.getLogger(__name__)


class IntentReaper:
    """One pass per call: every open intent past its expiry, `batch` at a time."""

    def __init__(self, location: S3Location, batch: int = 100) -> None:
        self.location = location
        self.batch = batch

    async def __call__(self) -> None:
        await self.reap()

    async def reap(self) -> int:
        """Reap every expired intent; how many."""
        reaped = 0
        while intents := await upload_intents.expired(datetime.now(UTC), self.batch):
            for intent in intents:
                await asyncio.to_thread(
                    step_objects.discard_upload, self.location, intent.object_key, intent.s3_upload_id
                )
            async with transaction():
                for file_id in await upload_intents.mark_expired([intent.id for intent in intents]):
                    await quotas.release(file_id)
            reaped += len(intents)
        if reaped:
            log.info("reaped %d expired direct uploads", reaped)
        return reaped
