"""Images already stored, as an upload leaves them (bytes in S3, a file row), without their jobs: the files a
backfill runs over."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from store.settings import Settings
from store.step_objects import S3Location, put
from tests.support.file_rows import insert_file
from tests.support.sample_files import image


async def stored_images(settings: Settings, tenant_id: uuid.UUID, count: int, **columns: Any) -> list[uuid.UUID]:
    """`count` small PNGs of distinct colours, each with its row (`columns` on it) and its object in S3."""
    location = S3Location.from_settings(settings)
    file_ids = []
    for number in range(count):
        content = image("PNG", color=(number % 256, number // 256 % 256, 90))
        file_id = await insert_file(
            tenant_id, f"{number}.png", media_type="image", content_type="image/png", format="png", **columns
        )
        key = f"files/{tenant_id}/{file_id}/original"
        await asyncio.to_thread(put, location, key, content, "image/png")
        file_ids.append(file_id)
    return file_ids
