"""Image embeddings in pgvector: one vector per (image, model), in the model's space (store/embeddings.py), and
the tenant's images nearest to one of them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from store import embeddings
from store.embeddings import IMAGES
from store.tables import File


@dataclass(frozen=True)
class Neighbour:
    file_id: uuid.UUID
    similarity: float  # cosine similarity, 1 = same direction
    frame_seconds: float | None = None  # a video's, found by this frame of it (store/frame_embeddings.py)


async def ensure_space(model_id: str, dimension: int) -> None:
    await embeddings.ensure_space(model_id, dimension, IMAGES)


async def save(model_id: str, tenant_id: uuid.UUID, file_id: uuid.UUID, vector: np.ndarray) -> None:
    """Store the image's vector in the model's space; saving again replaces it (a re-run writes the same row)."""
    await File.raw(
        """
        INSERT INTO image_embedding (file_id, model_id, tenant, embedding) VALUES ({}, {}, {}, {})
        ON CONFLICT (file_id, model_id) DO UPDATE SET embedding = excluded.embedding, created_at = now()
        """,
        file_id,
        model_id,
        tenant_id,
        np.asarray(vector, np.float32),
    )


async def vector_of(file_id: uuid.UUID, model_id: str) -> np.ndarray | None:
    rows = await File.raw(
        "SELECT embedding FROM image_embedding WHERE file_id = {} AND model_id = {}", file_id, model_id
    )
    return np.asarray(rows[0]["embedding"].to_list(), np.float32) if rows else None


async def similar(
    tenant_id: uuid.UUID, model_id: str, dimension: int, vector: np.ndarray, limit: int, exclude: uuid.UUID
) -> list[Neighbour]:
    """The tenant's `limit` live images nearest to `vector` in the model's space, most similar first, without
    `exclude` (the image asked about); fewer only when the tenant has fewer."""
    rows = await embeddings.nearest(
        IMAGES, tenant_id, model_id, dimension, vector, limit, filters=(("e.file_id <> {}", exclude),)
    )
    return [Neighbour(row["file_id"], float(row["similarity"])) for row in rows]
