"""The `embed_image` step: an image's vector from the image-embedding model actor (its batch lane), stored in the
space of each model in use for `/similar` (during a swap, the target's and the active one's: ModelClients.fill).
Drives the image's `embedding_status`. Runs in the engine's process."""

from __future__ import annotations

from typing import Any

from cluster.vision import ImageEmbedderClient
from models.registry import Task
from pipelines.engine.step import FileRef
from pipelines.image.source import image_of
from pipelines.inference.clients import ModelClients
from store import ai_outputs, image_embeddings, model_state
from store.step_objects import S3Location

OUTPUT = "image_embedding"  # its key in the file's `ai_models`


async def embed_image(
    file: FileRef, location: S3Location, embedders: ModelClients[ImageEmbedderClient]
) -> dict[str, Any]:
    image = await image_of(location, file)

    async def fill(embedder: ImageEmbedderClient, swapping: bool) -> dict[str, str]:
        spec = embedder.spec
        model = await embedder.provenance()
        if swapping:
            await model_state.learn_revision(Task.EMBED_IMAGE.value, spec.model_id, model["revision"])
            if await image_embeddings.vector_of(file.id, spec.model_id) is not None:
                return model  # the image never changes, so neither does its vector
        await image_embeddings.ensure_space(spec.model_id, spec.vector_dimension)
        [vector] = await embedder.embed([image], lane="batch")
        await image_embeddings.save(spec.model_id, file.tenant_id, file.id, vector)
        return model

    return {"models": list((await embedders.fill(fill)).values())}


async def save_provenance(file: FileRef, result: dict[str, Any]) -> None:
    """With `embedding_status: completed`: the active model's provenance."""
    await ai_outputs.record_active_model(file.id, OUTPUT, Task.EMBED_IMAGE.value, result["models"])
