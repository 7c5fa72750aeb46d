"""The `embed_image` step: an image's vector from the image-embedding model actor (its batch lane), stored in the
model's space for `/similar`. Drives the image's `embedding_status`. Runs in the engine's process."""

from __future__ import annotations

from typing import Any

from cluster.vision import ImageEmbedderClient
from pipelines.image_input import image_of
from pipelines.step import FileRef
from store import image_embeddings, vision
from store.objects import S3Location


async def embed_image(file: FileRef, location: S3Location, embedder: ImageEmbedderClient) -> dict[str, Any]:
    spec = embedder.spec
    await image_embeddings.ensure_space(spec.model_id, spec.dimension)
    vectors = await embedder.embed([await image_of(location, file)], lane="batch")
    return {"vector": vectors[0], "model": await embedder.provenance()}


async def save_vector(file: FileRef, result: dict[str, Any]) -> None:
    """With the job's completion: the vector and its provenance land with `embedding_status: completed`."""
    model = result["model"]
    await image_embeddings.save(model["model_id"], file.tenant_id, file.id, result["vector"])
    await vision.record_models(file.id, {"image_embedding": model})
