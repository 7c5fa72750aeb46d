"""Semantic search over the caller's document chunks."""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import JSONBody

from api.deps import Embedder, Tenant
from api.schemas.search import SearchRequest, SearchResponse
from api.search import search_chunks


class SearchController(Controller):
    path = "/api/v2/files"
    tags = ("search",)

    @post("/search", status_code=200)
    async def search(self, tenant: Tenant, embedder: Embedder, data: JSONBody[SearchRequest]) -> SearchResponse:
        """The chunks nearest in meaning to `query`, most similar first; 503 while no embedder can serve."""
        return await search_chunks(tenant, data, embedder)
