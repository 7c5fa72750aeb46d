"""Presigned URLs for image variants: what list and get responses link to, and where the variant
route redirects. A variant that does not exist yet has no URL (null), never a dead link."""

from __future__ import annotations

from typing import Protocol

from store.blob_store import BlobStore
from store.rows import Variant

VARIANT_SECONDS = 3600
# Response field -> variant shown there.
URL_FIELDS = {"thumbnail_url": "small_256", "medium_url": "medium_750", "full_url": "large_1024"}


class WithVariants(Protocol):
    """A row that reads the file's `variants` column."""

    @property
    def variants(self) -> dict[str, Variant] | None: ...


async def variant_url(blobs: BlobStore, row: WithVariants, name: str) -> str | None:
    stored = (row.variants or {}).get(name)
    if stored is None:
        return None
    return await blobs.presigned_get(stored.key, VARIANT_SECONDS, content_type=stored.content_type)


async def variant_urls(blobs: BlobStore, row: WithVariants) -> dict[str, str | None]:
    return {field: await variant_url(blobs, row, name) for field, name in URL_FIELDS.items()}
