"""Videos' key frames in the image embedding space: one vector per (frame, model), in the model's space
(store/embeddings.py), so that an image finds a video by whichever of its frames looks like it. A video's own
vector (what `/similar` asks from a video) stays its thumbnail's, in `image_embedding`. A frame's vectors go with
its `video_frame` row (a foreign key): a re-analysis that replaces the frames, or a purge, takes them along."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from store import embeddings
from store.embeddings import FRAMES
from store.tables import File


@dataclass(frozen=True)
class FrameMatch:
    """A video's frame nearest to a query: the video's best."""

    file_id: uuid.UUID
    frame_index: int
    timestamp_seconds: float
    similarity: float  # cosine similarity, 1 = same direction


async def ensure_space(model_id: str, dimension: int) -> None:
    await embeddings.ensure_space(model_id, dimension, FRAMES)


async def save(model_id: str, tenant_id: uuid.UUID, file_id: uuid.UUID, vectors: Mapping[int, np.ndarray]) -> None:
    """Store the vectors of the video's frames (by frame index) in the model's space; saving again replaces them.
    The frames' rows must exist (store/video_frames.py). Joins the caller's transaction."""
    if not vectors:
        return
    await File.raw(
        """
        INSERT INTO video_frame_embedding (file_id, frame_index, model_id, tenant, embedding)
        SELECT {}, e.frame_index, {}, {}, e.embedding::vector
        FROM unnest({}::integer[], {}::text[]) AS e(frame_index, embedding)
        ON CONFLICT (file_id, frame_index, model_id) DO UPDATE SET embedding = excluded.embedding, created_at = now()
        """,
        file_id,
        model_id,
        tenant_id,
        list(vectors),
        [embeddings.vector_text(vector) for vector in vectors.values()],
    )


async def count(file_id: uuid.UUID, model_id: str) -> int:
    """How many of the video's frames have a vector in the model's space."""
    rows = await File.raw(
        "SELECT count(*) AS n FROM video_frame_embedding WHERE file_id = {} AND model_id = {}", file_id, model_id
    )
    return int(rows[0]["n"])


async def nearest_videos(
    tenant_id: uuid.UUID, model_id: str, dimension: int, vector: np.ndarray, limit: int, exclude: uuid.UUID
) -> list[FrameMatch]:
    """The tenant's live videos with a frame among the `limit` frames nearest to `vector` (but `exclude`'s), each
    once, by its nearest frame, most similar first. Frames of one video can fill the `limit`: a video left out so
    is still found by its own vector (its thumbnail's, in `image_embedding`)."""
    rows = await embeddings.nearest(
        FRAMES, tenant_id, model_id, dimension, vector, limit, filters=(("e.file_id <> {}", exclude),)
    )
    best: dict[uuid.UUID, dict[str, Any]] = {}
    for row in rows:  # most similar first
        best.setdefault(row["file_id"], row)
    if not best:
        return []
    times = await File.raw(
        """
        SELECT f.file_id, f.frame_index, f.timestamp_seconds FROM video_frame f
        JOIN unnest({}::uuid[], {}::integer[]) AS b(file_id, frame_index) USING (file_id, frame_index)
        """,
        list(best),
        [row["frame_index"] for row in best.values()],
    )
    seconds = {(row["file_id"], row["frame_index"]): row["timestamp_seconds"] for row in times}
    return [
        FrameMatch(file_id, row["frame_index"], seconds[file_id, row["frame_index"]], float(row["similarity"]))
        for file_id, row in best.items()
        if (file_id, row["frame_index"]) in seconds  # replaced since the search found it
    ]
