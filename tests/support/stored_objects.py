"""What a tenant has left in S3, read behind the API (through the `blobs` fixture's client)."""

from __future__ import annotations

import httpx

from tests.support.api_calls import listing
from tests.support.callers import Caller


async def stored_keys(blobs, caller: Caller) -> list[str]:
    """The objects an upload stored for the tenant (its originals), not what processing derives from them: an
    engine of the test session may have made an image's variants or a video's frames already."""
    derived = ("/variants/", "/frames/")
    return [key for key in await blobs.keys(f"files/{caller.tenant_id}/") if not any(part in key for part in derived)]


async def pending_multipart(blobs, caller: Caller) -> list[str]:
    response = await blobs.client.list_multipart_uploads(Bucket=blobs.bucket, Prefix=f"files/{caller.tenant_id}/")
    return [item["Key"] for item in response.get("Uploads", [])]


async def assert_nothing_stored(client: httpx.AsyncClient, blobs, caller: Caller) -> None:
    """No file listed, no object and no multipart upload left behind."""
    assert (await listing(client, caller))["total_count"] == 0
    assert await stored_keys(blobs, caller) == []
    assert await pending_multipart(blobs, caller) == []
