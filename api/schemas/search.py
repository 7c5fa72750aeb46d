"""Wire types of semantic search over document chunks."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from msgspec import Meta

from api.schemas.documents import ChunkText
from api.schemas.text import Text

MAX_DOCUMENT_IDS = 100
MAX_QUERY_CHARS = 1000


class SearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`similarity_threshold` defaults to 0: every chunk that points the query's way at all (cosine > 0), so a
    plain query always gets its `limit` nearest chunks; raise it to trade recall for precision. `document_ids`
    omitted or null: every document of the tenant; ids that are not the tenant's match nothing."""

    query: Annotated[Text, Meta(min_length=1, max_length=MAX_QUERY_CHARS)]
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    similarity_threshold: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.0
    document_ids: Annotated[list[uuid.UUID], Meta(min_length=1, max_length=MAX_DOCUMENT_IDS)] | None = None


class ChunkMetadata(msgspec.Struct):
    chunk_type: str


class SearchHit(ChunkText):
    similarity_score: float
    metadata: ChunkMetadata


class SearchResponse(msgspec.Struct):
    """`total_count` is the number of items returned (at most `limit`); `search_time_ms` covers embedding the
    query, the nearest-neighbour search and reading the chunks."""

    query: str
    items: list[SearchHit]
    total_count: int
    search_time_ms: int
