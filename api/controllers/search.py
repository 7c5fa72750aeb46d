"""Semantic search over the caller's document chunks."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.params import JSONBody

from api.auth import tenant_of
from api.schemas.search import SearchRequest, SearchResponse
from api.search import search_chunks


class SearchController(Controller):
    path = "/api/v2/files"
    tags = ("search",)

    @post("/search", status_code=200)
    async def search(
        self, request: Request[Any, Any, State], state: State, data: JSONBody[SearchRequest]
    ) -> SearchResponse:
        """The chunks nearest in meaning to `query`, most similar first; 503 while no embedder can serve."""
        return await search_chunks(tenant_of(request), data, state.embedder)
