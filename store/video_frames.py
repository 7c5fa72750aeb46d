"""A video's key frames: one row per frame kept (its time, its JPEG's key, its size) and what the models read of it
(visible text, a description). Written with the completion of the video's analysis, all at once: a retried
analysis replaces them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec

from store.rows import as_rows
from store.tables import File


class FrameRow(msgspec.Struct):
    frame_index: int
    timestamp_seconds: float
    scene_cut: bool
    object_key: str
    width: int
    height: int
    visible_text: str | None
    description: str | None


async def replace_frames(file_id: uuid.UUID, tenant_id: uuid.UUID, frames: Sequence[dict[str, Any]]) -> None:
    """The video's frames, as the analysis found them (dicts with FrameRow's fields); joins the caller's
    transaction."""
    await File.raw("DELETE FROM video_frame WHERE file_id = {}", file_id)
    if not frames:
        return
    await File.raw(
        """
        INSERT INTO video_frame (file_id, tenant, frame_index, timestamp_seconds, scene_cut, object_key, width, height,
            visible_text, description)
        SELECT {}, {}, f.frame_index, f.timestamp_seconds, f.scene_cut, f.object_key, f.width, f.height,
            f.visible_text, f.description
        FROM jsonb_to_recordset({}::jsonb) AS f(frame_index integer, timestamp_seconds double precision,
            scene_cut boolean, object_key text, width integer, height integer, visible_text text, description text)
        """,
        file_id,
        tenant_id,
        json.dumps([{name: frame.get(name) for name in FrameRow.__struct_fields__} for frame in frames]),
    )


async def frames_of(file_id: uuid.UUID) -> list[FrameRow]:
    """The video's frames in time order; none before its analysis completes."""
    fields = ", ".join(FrameRow.__struct_fields__)
    rows = await File.raw(f"SELECT {fields} FROM video_frame WHERE file_id = {{}} ORDER BY frame_index", file_id)
    return as_rows(FrameRow, rows)


async def describe_frames(file_id: uuid.UUID, descriptions: dict[int, str]) -> None:
    """Each frame's description, by frame index; joins the caller's transaction."""
    if not descriptions:
        return
    await File.raw(
        """
        UPDATE video_frame f SET description = d.value
        FROM jsonb_each_text({}::jsonb) AS d WHERE f.file_id = {} AND f.frame_index = d.key::integer
        """,
        json.dumps({str(index): text for index, text in descriptions.items()}),
        file_id,
    )
