"""Presigned URLs for image variants: what list and get responses link to, and where the variant
route redirects. A variant that does not exist yet has no URL (null), never a dead link."""

from __future__ import annotations

from typing import Protocol, TypedDict

from store.blob_store import BlobStore
from store.rows import Variant

VARIANT_SECONDS = 3600


class VariantUrls(TypedDict):
    """The response fields that link to an image's variants."""

    thumbnail_url: str | None
    medium_url: str | None
    full_url: str | None


class WithVariants(Protocol):
    """A row that reads the file's `variants` column."""

    @property
    def variants(self) -> dict[str, Variant] | None: ...


async def variant_url(blobs: BlobStore, row: WithVariants, name: str) -> str | None:
    stored = (row.variants or {}).get(name)
    if stored is None:
        return None
    return await blobs.presigned_get(stored.key, VARIANT_SECONDS, content_type=stored.content_type)


async def variant_urls(blobs: BlobStore, row: WithVariants) -> VariantUrls:
    return VariantUrls(
        thumbnail_url=await variant_url(blobs, row, "small_256"),
        medium_url=await variant_url(blobs, row, "medium_750"),
        full_url=await variant_url(blobs, row, "large_1024"),
    )
