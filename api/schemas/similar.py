"""Wire types of `GET /files/{file_id}/similar`, named as the spec names them."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class SimilarImage(msgspec.Struct):
    image_id: uuid.UUID
    media_type: str  # ours beyond the spec: "image", or "video" (found by its nearest key frame or thumbnail)
    title: str | None
    description: str | None  # the user's description, else the AI's
    relevance_score: float  # the hybrid ranking score (api/similar.py)
    vector_similarity: float  # cosine similarity of the two images' embeddings
    thumbnail_url: str | None
    medium_url: str | None
    full_url: str | None
    folder_id: uuid.UUID | None
    created_at: datetime
    # Ours beyond the spec: a video found by one of its key frames, that frame's time in the video; else null.
    matched_frame_seconds: float | None = None


class SimilarImages(msgspec.Struct):
    reference_image_id: uuid.UUID
    items: list[SimilarImage]
    total_count: int
