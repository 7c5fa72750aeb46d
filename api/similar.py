"""Images similar to one of the tenant's images: its nearest neighbours in the active image-embedding space,
re-ranked with the meaning of what is said about them. A video takes part by its frames (pipelines/video/analysis.py):
it is found by whichever of its key frames (or its thumbnail) is nearest, once, with that frame's time
(`matched_frame_seconds`); and its own similar images are found from the frame its thumbnail shows.

    relevance_score = 0.7 * vector_similarity + 0.3 * max(text_similarity, 0)   when both images have text
    relevance_score = vector_similarity                                           otherwise

`vector_similarity` is the cosine of the two image embeddings; `text_similarity` the cosine of the text
embeddings (the search's text model) of each image's description (the user's, else the AI's) and visible
text. The 3 × `limit` nearest images (at most 150) are re-ranked, so text can lift a slightly less alike
image but never bring in one that does not look alike. Should the text embedder be unavailable, the ranking
falls back to the vectors alone rather than failing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime

import msgspec
import numpy as np

from api.schemas.similar import SimilarImage, SimilarImages
from api.shaping import shaped
from api.variant_urls import variant_urls
from pipelines.inference.in_use import serving_image_model
from pipelines.inference.query_embedding import QueryEmbedder
from store import files, frame_embeddings, image_embeddings
from store.blob_store import BlobStore
from store.errors import Conflict, Misconfigured, Unavailable, WrongMediaType
from store.frame_embeddings import FrameMatch
from store.image_embeddings import Neighbour
from store.rows import FileRow, Variant
from store.settings import Settings
from store.tenants import TenantRef

log = logging.getLogger(__name__)

VECTOR_WEIGHT = 0.7
CANDIDATES_PER_RESULT = 3
MAX_CANDIDATES = 150


class _Candidate(msgspec.Struct):
    """What ranking and showing a similar image read of its file row."""

    id: uuid.UUID
    media_type: str
    title: str | None
    user_description: str | None
    upload_description: str | None
    visible_text: str | None
    variants: dict[str, Variant] | None
    folder_id: uuid.UUID | None
    created_at: datetime


async def similar_images(
    tenant: TenantRef, ref: str, limit: int, settings: Settings, blobs: BlobStore, embedder: QueryEmbedder
) -> SimilarImages:
    reference = await files.get_file(tenant.id, ref)
    if reference.media_type not in ("image", "video"):  # a video by the frame its thumbnail shows
        raise WrongMediaType(
            f"similar images are found for images and videos only; this file is a {reference.media_type}"
        )
    model = await serving_image_model(settings)
    vector = await image_embeddings.vector_of(reference.id, model.model_id)
    if vector is None:
        raise Conflict(
            f"the image is not embedded yet (embedding_status: {reference.embedding_status}); retry once it is "
            "completed",
            code="embedding_not_ready",
            embedding_status=reference.embedding_status,
        )
    wanted = min(limit * CANDIDATES_PER_RESULT, MAX_CANDIDATES)
    dimension = int(model.dimension or len(vector))
    neighbours = nearest_files(
        await image_embeddings.similar(tenant.id, model.model_id, dimension, vector, wanted, exclude=reference.id),
        await frame_embeddings.nearest_videos(tenant.id, model.model_id, dimension, vector, wanted, reference.id),
        wanted,
    )
    rows = await _rows(tenant.id, [n.file_id for n in neighbours])
    neighbours = [n for n in neighbours if n.file_id in rows]  # deleted since the search found it
    texts = await _text_similarities(reference, [rows[n.file_id] for n in neighbours], embedder)
    ranked = sorted(
        ((relevance(n.similarity, text), n) for n, text in zip(neighbours, texts, strict=True)),
        key=lambda pair: (-pair[0], -pair[1].similarity, pair[1].file_id),
    )[:limit]
    items = [await _item(rows[n.file_id], score, n, blobs) for score, n in ranked]
    return SimilarImages(reference_image_id=reference.id, items=items, total_count=len(items))


def nearest_files(images: list[Neighbour], frames: list[FrameMatch], limit: int) -> list[Neighbour]:
    """The `limit` nearest files, each once by its nearest vector: an image's, a video's thumbnail's or one of its
    frames' (which brings the frame's time)."""
    best: dict[uuid.UUID, Neighbour] = {}
    found = [*images, *(Neighbour(f.file_id, f.similarity, f.timestamp_seconds) for f in frames)]
    for neighbour in sorted(found, key=lambda n: -n.similarity):
        best.setdefault(neighbour.file_id, neighbour)
    return sorted(best.values(), key=lambda n: (-n.similarity, n.file_id))[:limit]


def relevance(vector_similarity: float, text_similarity: float | None) -> float:
    if text_similarity is None:
        return vector_similarity
    return VECTOR_WEIGHT * vector_similarity + (1 - VECTOR_WEIGHT) * max(text_similarity, 0.0)


def said_about(row: FileRow | _Candidate) -> str | None:
    """What is said about an image: its description (the user's over the AI's) and its visible text."""
    parts = [row.user_description or row.upload_description, row.visible_text]
    return "\n".join(part.strip() for part in parts if part and part.strip()) or None


async def _rows(tenant_id: uuid.UUID, file_ids: list[uuid.UUID]) -> dict[uuid.UUID, _Candidate]:
    """The live files among the neighbours (images and videos)."""
    if not file_ids:
        return {}
    rows = await files.live_rows(tenant_id, _Candidate, file_ids=file_ids, limit=len(file_ids))
    return {row.id: row for row in rows}


async def _text_similarities(reference: FileRow, rows: list[_Candidate], embedder: QueryEmbedder) -> list[float | None]:
    """Each row's text similarity to the reference; None where either has no text (or no embedder serves)."""
    texts = [said_about(row) for row in rows]
    own = said_about(reference)
    if own is None or not any(texts):
        return [None] * len(rows)
    wanted = [own, *dict.fromkeys(text for text in texts if text)]
    try:
        vectors = await asyncio.gather(*(embedder.embed(text) for text in wanted))
    except (Unavailable, Misconfigured) as error:
        log.warning("similar images ranked by their vectors alone: %s", error)
        return [None] * len(rows)
    by_text = {text: query.vector for text, query in zip(wanted, vectors, strict=True)}
    return [None if text is None else float(np.dot(by_text[own], by_text[text])) for text in texts]


async def _item(row: _Candidate, score: float, neighbour: Neighbour, blobs: BlobStore) -> SimilarImage:
    return shaped(
        SimilarImage,
        row,
        image_id=row.id,
        description=row.user_description or row.upload_description,
        relevance_score=round(score, 6),
        vector_similarity=round(neighbour.similarity, 6),
        matched_frame_seconds=neighbour.frame_seconds,
        **await variant_urls(blobs, row),
    )
