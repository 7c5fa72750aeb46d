"""Presigned URLs for image variants: what list and get responses link to, and where the variant
route redirects. A variant that does not exist yet has no URL (null), never a dead link."""

from __future__ import annotations

from typing import Any

from store.blob_store import BlobStore

VARIANT_SECONDS = 3600
# Response field -> variant shown there.
URL_FIELDS = {"thumbnail_url": "small_256", "medium_url": "medium_750", "full_url": "large_1024"}


async def variant_url(blobs: BlobStore, row: dict[str, Any], name: str) -> str | None:
    stored = (row.get("variants") or {}).get(name)
    if stored is None:
        return None
    return await blobs.presigned_get(stored["key"], VARIANT_SECONDS, content_type=stored["content_type"])


async def variant_urls(blobs: BlobStore, row: dict[str, Any]) -> dict[str, str | None]:
    return {field: await variant_url(blobs, row, name) for field, name in URL_FIELDS.items()}
