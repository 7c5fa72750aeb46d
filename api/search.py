"""Semantic search over a tenant's document chunks: embed the query in the active model's space, find the
nearest chunks of the tenant's live documents, and shape them with their documents' names."""

from __future__ import annotations

import time
from typing import Any

from api.document_views import chunk_text
from api.schemas.search import ChunkMetadata, SearchHit, SearchRequest, SearchResponse
from pipelines.inference.query_embedding import QueryEmbedder
from store import documents, embeddings, search
from store.errors import InvalidInput
from store.tenants import TenantRef


async def search_chunks(tenant: TenantRef, request: SearchRequest, embedder: QueryEmbedder) -> SearchResponse:
    started = time.perf_counter()
    if not request.query.strip():
        raise InvalidInput("must not be blank", field="query")
    query = await embedder.embed(request.query)
    matches = await embeddings.search(
        tenant.id,
        query.model_id,
        query.dimension,
        query.vector,
        request.limit,
        similarity_threshold=request.similarity_threshold,
        document_ids=list(dict.fromkeys(request.document_ids)) if request.document_ids is not None else None,
    )
    chunks = await documents.chunks_by_id([match.chunk_id for match in matches])
    names = await search.live_filenames(tenant.id, {match.file_id for match in matches})
    # A chunk replaced or a document deleted since the search matched it is left out, not shown stale.
    items = [
        _hit(chunks[match.chunk_id], names[match.file_id], match.similarity)
        for match in matches
        if match.chunk_id in chunks and match.file_id in names
    ]
    elapsed_ms = round((time.perf_counter() - started) * 1000)
    return SearchResponse(query=request.query, items=items, total_count=len(items), search_time_ms=elapsed_ms)


def _hit(chunk: dict[str, Any], filename: str, similarity: float) -> SearchHit:
    return SearchHit(
        **chunk_text(chunk, filename),
        similarity_score=round(similarity, 6),
        metadata=ChunkMetadata(chunk_type=chunk["chunk_type"]),
    )
