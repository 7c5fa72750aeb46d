"""`GET /files/{file_id}/similar`: the tenant's images that look like one of its images (api/similar.py)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import FromPath, QueryParameter

from api.deps import AppSettings, Blobs, Embedder, Tenant
from api.schemas.similar import SimilarImages
from api.similar import similar_images


class SimilarController(Controller):
    path = "/api/v2/files"
    tags = ("files",)

    @get("/{file_id:str}/similar")
    async def similar(
        self,
        tenant: Tenant,
        settings: AppSettings,
        blobs: Blobs,
        embedder: Embedder,
        file_id: FromPath[str],
        limit: Annotated[int, QueryParameter(ge=1, le=50)] = 20,
    ) -> SimilarImages:
        """Visually similar images, most relevant first: nearest image embeddings re-ranked with the meaning of
        their descriptions and visible text. 400 on a file that is not an image; 409 (code
        `embedding_not_ready`) until the image's embedding is completed."""
        return await similar_images(tenant, file_id, limit, settings, blobs, embedder)
