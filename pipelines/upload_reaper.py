"""Direct uploads leave nothing behind, whatever dies when. An engine upkeep, each pass:

- reaps expired intents: aborts their multipart uploads and deletes any object a client sent, then marks them FAILED
  and refunds the credits they reserved (together, in one transaction). Storage goes first, so a crash in between
  leaves an intent that the next pass reaps again (aborts and deletes are idempotent);
- settles intents left VERIFYING by a `complete` whose process died: COMPLETED when its file row was written (only
  the intent lagged), else FAILED (its credits refunded) and its object deleted. One is taken for dead once claimed
  longer ago than the grace plus the time to read its size at a slow 50 MB/s, so a long `complete` that still runs
  is left alone. The intent is marked first: a crash before the delete leaves an object that the sweep below
  removes;
- sweeps S3 state that no row owns (a crash between S3 and the database: a multipart upload started before its
  intent was written, an object written before its file row): one page of in-progress multipart uploads and one page
  of objects under the prefix per pass, each listing resumed where the last pass stopped. Whatever is older than the
  grace and owned by no row is aborted or deleted: a multipart upload that no unsettled intent names, an object
  under `files/<tenant>/<file>/` whose file id has neither a file row nor an unsettled intent. The grace
  (`storage.leftover_grace_seconds`) outlasts any upload still writing before its row."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

from store import quotas, step_objects, upload_intents
from store.database import transaction
from store.step_objects import S3Location

log = logging.getLogger(__name__)

VERIFY_FLOOR_BYTES_PER_SECOND = 50_000_000  # a `complete` slower than this is taken for dead after the grace
FILES_PREFIX = "files/"


class IntentReaper:
    """One pass per call: expired intents and stuck ones `batch` at a time, then one page of each leftover sweep."""

    def __init__(
        self, location: S3Location, grace_seconds: float = 3600, prefix: str = FILES_PREFIX, batch: int = 100
    ) -> None:
        self.location = location
        self.grace = timedelta(seconds=grace_seconds)
        self.prefix = prefix
        self.batch = batch
        self._objects_after: str | None = None
        self._uploads_after: tuple[str, str] | None = None

    async def __call__(self) -> None:
        await self.reap()
        await self.recover()
        await self.sweep()

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

    async def recover(self) -> tuple[int, int]:
        """Settle the intents stuck VERIFYING; how many were completed and how many failed."""
        completed = failed = 0
        grace = self.grace.total_seconds()
        while intents := await upload_intents.stuck(
            datetime.now(UTC), grace, VERIFY_FLOOR_BYTES_PER_SECOND, self.batch
        ):
            for intent in intents:
                if await upload_intents.recover_completed(intent.id):
                    completed += 1
                elif await self._fail(intent.id, intent.file_id):
                    await asyncio.to_thread(
                        step_objects.discard_upload, self.location, intent.object_key, intent.s3_upload_id
                    )
                    failed += 1
        if completed or failed:
            log.info("settled direct uploads left verifying: %d completed, %d failed", completed, failed)
        return completed, failed

    @staticmethod
    async def _fail(intent_id: uuid.UUID, file_id: uuid.UUID) -> bool:
        """Fail a stuck intent and refund its reserved credits together; False when it settled meanwhile."""
        async with transaction():
            if not await upload_intents.fail_stuck(intent_id, "verification was interrupted; upload again"):
                return False
            await quotas.release(file_id)
        return True

    async def sweep(self) -> tuple[int, int]:
        """One page of each leftover listing; how many multipart uploads were aborted and objects deleted."""
        cutoff = datetime.now(UTC) - self.grace
        return await self._sweep_uploads(cutoff), await self._sweep_objects(cutoff)

    async def _sweep_uploads(self, cutoff: datetime) -> int:
        found, self._uploads_after = await asyncio.to_thread(
            step_objects.multipart_page, self.location, self.prefix, self._uploads_after, 1000
        )
        old = [(key, upload_id) for key, upload_id, initiated in found if initiated <= cutoff]
        live = await upload_intents.live_multipart([upload_id for _, upload_id in old]) if old else set()
        leftovers = [(key, upload_id) for key, upload_id in old if upload_id not in live]
        for key, upload_id in leftovers:
            await asyncio.to_thread(step_objects.abort_multipart, self.location, key, upload_id)
        if leftovers:
            log.info("aborted %d multipart uploads that no direct upload owns", len(leftovers))
        return len(leftovers)

    async def _sweep_objects(self, cutoff: datetime) -> int:
        found, self._objects_after = await asyncio.to_thread(
            step_objects.objects_page, self.location, self.prefix, self._objects_after, 1000
        )
        old = {key: file_id for key, modified in found if modified <= cutoff and (file_id := _file_id(key))}
        live = await upload_intents.live_file_ids(list(set(old.values()))) if old else set()
        leftovers = [key for key, file_id in old.items() if file_id not in live]
        if leftovers:
            await asyncio.to_thread(step_objects.delete_keys, self.location, leftovers)
            log.info("deleted %d objects that no file or direct upload owns", len(leftovers))
        return len(leftovers)


def _file_id(key: str) -> uuid.UUID | None:
    """The file id of a key `files/<tenant>/<file>/...` (store/keys.py); None for any other key, left alone."""
    parts = key.split("/")
    if len(parts) < 4 or parts[0] + "/" != FILES_PREFIX:
        return None
    try:
        return uuid.UUID(parts[2])
    except ValueError:
        return None
