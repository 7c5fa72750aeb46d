"""Registering objects already in S3 as files (`scopix import s3://BUCKET/PREFIX`): each object is read once,
hashed and inspected as an upload is (the same refusals), copied server-side into the file's own key, and recorded
with its plan's first steps queued in the backfill lane as the import's jobs; a tenant's file with the same bytes
makes it a duplicate, not a second file.

An import is a backfill row of kind `import` (store/backfills.py): its cursor is the last source key of the last
batch it finished, so `--resume` lists on from there. A file's id is derived from the import and the source key,
so an object handled again after an interruption lands on the same key and the same row (it is found as already
registered), and nothing is left behind by an import stopped between its copy and its record.

Objects are always copied: a file's objects share its prefix (`files/<tenant>/<file>/`: its variants are written
there and a purge deletes it), which an object referenced where it lies in someone's bucket cannot have.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from api.uploads.fields import UploadOptions
from api.uploads.intake import ContentCheck, NewFile, record_file
from store import backfills, files
from store.backfills import Backfill
from store.blob_store import BlobStore
from store.errors import DomainError, InvalidInput
from store.keys import original_key
from store.settings import Settings
from store.tenants import TenantRef, find_tenant

log = logging.getLogger(__name__)

STEP = "import"
IN_FLIGHT = 8  # objects read and copied at once


class Source(msgspec.Struct, frozen=True, kw_only=True):
    """What an import covers, as its backfill row keeps it."""

    bucket: str
    prefix: str
    tenant_id: uuid.UUID
    tags: list[str] = []


def parse_source(url: str) -> tuple[str, str]:
    """`s3://BUCKET/PREFIX` as (bucket, prefix)."""
    scheme, _, rest = url.partition("://")
    bucket, _, prefix = rest.partition("/")
    if scheme != "s3" or not bucket:
        raise InvalidInput(f"{url!r} is not an S3 location such as s3://bucket/prefix/", field="source")
    return bucket, prefix


async def start(url: str, tenant: str, tags: list[str]) -> Backfill:
    bucket, prefix = parse_source(url)
    found = await find_tenant(tenant)
    source = Source(bucket=bucket, prefix=prefix, tenant_id=found.id, tags=tags)
    return await backfills.create("import", STEP, msgspec.to_builtins(source))


@dataclass(frozen=True)
class Importer:
    """Registers a batch of a source's objects at a time, for pipelines/backfill.drive."""

    blobs: BlobStore
    settings: Settings
    size: int

    async def next_batch(self, row: Backfill) -> Backfill:
        source = msgspec.convert(row.selection, Source)
        tenant = await find_tenant(str(source.tenant_id))
        listed = await self.blobs.listed_after(source.bucket, source.prefix, row.cursor, self.size)
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(key: str, size: int) -> str:
            async with gate:
                return await self._register(row.id, source, tenant, key, size)

        outcomes = await asyncio.gather(*(one(key, size) for key, size in listed))
        counts = {outcome: outcomes.count(outcome) for outcome in set(outcomes)}
        async with backfills.transaction():
            current = await backfills.lock(row.id)
            if current is not None and current.status == "running":
                cursor = listed[-1][0] if listed else row.cursor
                await backfills.checkpoint(row.id, cursor, counts, enqueued=len(listed) < self.size)
        refreshed = await backfills.get(row.id)
        assert refreshed is not None
        return refreshed

    async def _register(self, import_id: uuid.UUID, source: Source, tenant: TenantRef, key: str, size: int) -> str:
        """One object: "registered", "already" (registered by this import before), "duplicate" or "refused"."""
        if size > self.settings.storage.max_upload_bytes:
            log.info("import %s: refused %s: %d bytes is over the upload limit", import_id, key, size)
            return "refused"
        check = ContentCheck(key.rsplit("/", 1)[-1])
        try:
            async for chunk in self.blobs.read_chunks(key, bucket=source.bucket):
                check.feed(chunk)
            detected = check.identify()
        except DomainError as refused:
            log.info("import %s: refused %s: %s", import_id, key, refused.detail)
            return "refused"
        file_id = uuid.uuid5(import_id, key)
        existing = await files.find_by_sha256(tenant.id, check.sha256)
        if existing is not None:
            return "already" if existing == file_id else "duplicate"
        object_key = original_key(tenant.id, file_id)
        await self.blobs.copy_in(source.bucket, key, object_key)
        options = UploadOptions(tags=list(source.tags), skip_duplicates=True)
        filename = key.rsplit("/", 1)[-1][:255] or "object"
        new = NewFile(file_id, filename, check.size, check.sha256, object_key, "IMPORT", detected, options)
        describes = self.settings.models.describe.model is not None
        found, _ = await record_file(new, tenant, describes, import_id=import_id)
        if found is None or found == file_id:
            return "registered" if found is None else "already"
        await self.blobs.delete(object_key)  # the same bytes were recorded meanwhile
        return "duplicate"


def summary(row: Backfill) -> dict[str, Any]:
    return {name: row.counts.get(name, 0) for name in ("registered", "duplicate", "refused", "already")}
