"""What a vision step sends its model: the image's `medium_750` variant (upright, small, in a format every model
decodes), or the original when it is no larger than that variant in a plain format and small in bytes too (the
variant would only be a lossy re-encoding of it), or when no variant was recorded. Read from S3 in a thread, in
the engine's process: only the bytes travel to the model actor. (A small picture can carry megabytes of metadata
or trailing bytes; those the engine's process never holds.)"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pipelines.engine.step import FileRef, StepFailed
from store import ai_outputs
from store.step_objects import S3Location, opened

VARIANT = "medium_750"
PLAIN_FORMATS = ("jpeg", "png", "webp")  # decoded by Pillow alone wherever a model runs
MAX_ORIGINAL_BYTES = 4 * 1024 * 1024  # 750 x 750 pixels take at most ~2.2 MB even as uncompressed PNG


@dataclass(frozen=True)
class ImageSource:
    key: str  # what to send: the variant's or the original's
    auto_describe: bool
    content_category: str


async def image_source(file: FileRef) -> ImageSource:
    row = await ai_outputs.image_source(file.id)
    if row is None:
        raise StepFailed(f"file {file.id} no longer exists")
    return ImageSource(source_key(row), row["auto_describe"], row["content_category"])


async def image_bytes(location: S3Location, source: ImageSource) -> bytes:
    return await asyncio.to_thread(read_object, location, source.key)


async def image_of(location: S3Location, file: FileRef) -> bytes:
    return await image_bytes(location, await image_source(file))


def source_key(row: dict[str, Any]) -> str:
    variant = (row["variants"] or {}).get(VARIANT)
    if variant is None:
        return row["object_key"]
    size = row["dimensions"] or {}
    downscaled = variant["width"] < size.get("width", 0) or variant["height"] < size.get("height", 0)
    plain = row["format"] in PLAIN_FORMATS and row["size_bytes"] <= MAX_ORIGINAL_BYTES
    return row["object_key"] if plain and not downscaled else variant["key"]


def read_object(location: S3Location, key: str) -> bytes:
    with opened(location, key) as stream:
        return stream.read()
