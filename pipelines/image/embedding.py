"""The `embed_image` step: an image's vector from the image-embedding model actor (its batch lane), stored in the
space of each model in use for `/similar` (during a swap, the target's and the active one's: ModelClients.in_use).
Drives the image's `embedding_status`. Runs in the engine's process.

`load` reads the image and which models are in use (making their spaces, once), and during a swap which of them
have the image's vector already (the image never changes, so neither does its vector); `run` asks each model for
what is missing; `save` stores the vectors and the active model's provenance with the job's completion, after
confirming that the models in use are still those (ModelClients.still_in_use)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cluster.model_clients import ImageEmbedderClient
from models.registry import Task
from pipelines.engine.step import FileRef, Result, files_lane
from pipelines.image.source import image_of
from pipelines.inference.clients import ModelClients
from store import ai_outputs, image_embeddings, model_state
from store.step_objects import S3Location

OUTPUT = "image_embedding"  # its key in the file's `ai_models`


@dataclass(frozen=True)
class Inputs:
    image: bytes
    embedders: dict[str, ImageEmbedderClient]  # the models in use, by model id, the swap's target first
    kept: frozenset[str]  # those of them whose vector of the image is stored already (during a swap)


@dataclass(frozen=True)
class EmbedImage:
    location: S3Location
    embedders: ModelClients[ImageEmbedderClient]

    async def load(self, file: FileRef) -> Inputs:
        image = await image_of(self.location, file)
        embedders = await self.embedders.in_use()
        kept = set()
        for model_id, embedder in embedders.items():
            # DDL the first time a model is used, in a transaction of its own: never in the completing one, where it
            # would hold the table's lock until the commit.
            await image_embeddings.ensure_space(model_id, embedder.spec.vector_dimension)
            if len(embedders) > 1 and await image_embeddings.vector_of(file.id, model_id) is not None:
                kept.add(model_id)
        return Inputs(image, embedders, frozenset(kept))

    async def run(self, inputs: Inputs) -> dict[str, Any]:
        """{"models": {model id: provenance}, "vectors": {model id: vector}} for every model in use."""
        models: dict[str, dict[str, str]] = {}
        vectors: dict[str, np.ndarray] = {}
        for model_id, embedder in inputs.embedders.items():
            models[model_id] = await embedder.provenance()
            if model_id not in inputs.kept:
                [vectors[model_id]] = await embedder.embed([inputs.image], lane=files_lane())
        return {"models": models, "vectors": vectors}

    async def save(self, file: FileRef, result: Result) -> None:
        """The vectors, the swap target's revision once known, and (with `embedding_status: completed`) the active
        model's provenance."""
        in_use = await self.embedders.still_in_use(result["models"])
        for model_id in in_use:
            model = result["models"][model_id]
            if len(in_use) > 1:
                await model_state.learn_revision(Task.EMBED_IMAGE.value, model_id, model["revision"])
            if model_id in result["vectors"]:
                await image_embeddings.save(model_id, file.tenant_id, file.id, result["vectors"][model_id])
        models = [result["models"][model_id] for model_id in in_use]
        await ai_outputs.record_active_model(file.id, OUTPUT, Task.EMBED_IMAGE.value, models)
