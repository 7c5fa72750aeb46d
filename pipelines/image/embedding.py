"""The `embed_image` step: an image's vector from the image-embedding model actor (its batch lane), stored in the
space of each model in use for `/similar` (during a swap, the target's and the active one's: ModelClients.in_use).
Drives the image's `embedding_status`. Runs in the engine's process.

A video is embedded as the image its thumbnail shows, and each of its key frames too, in the same request: the
frames' vectors (store/frame_embeddings.py) let an image find the video by any frame. So the backfill a swap
queues re-embeds a video's frames along with its thumbnail, and the video's vectors in a space are complete or
absent together.

`load` reads the image (and a video's frames) and which models are in use (making their spaces, once), and during
a swap which of them have the file's vectors already (the file never changes, so neither do its vectors); `run`
asks each model for what is missing; `save` stores the vectors and the active model's provenance with the job's
completion, after confirming that the models in use are still those (ModelClients.still_in_use)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cluster.model_clients import ImageEmbedderClient
from models.registry import Task
from pipelines.engine.step import FileRef, Result, files_lane
from pipelines.image.source import image_of, read_object
from pipelines.inference.clients import ModelClients
from store import ai_outputs, frame_embeddings, image_embeddings, model_state, video_frames
from store.step_objects import S3Location

OUTPUT = "image_embedding"  # its key in the file's `ai_models`


@dataclass(frozen=True)
class Inputs:
    image: bytes
    frames: dict[int, bytes]  # a video's key frames' JPEGs by frame index; none for an image
    embedders: dict[str, ImageEmbedderClient]  # the models in use, by model id, the swap's target first
    kept: frozenset[str]  # those of them whose vectors of the file are stored already (during a swap)


@dataclass(frozen=True)
class EmbedImage:
    location: S3Location
    embedders: ModelClients[ImageEmbedderClient]

    async def load(self, file: FileRef) -> Inputs:
        image = await image_of(self.location, file)
        frames = await self.frames_of(file) if file.media_type == "video" else {}
        embedders = await self.models_for(file)
        return Inputs(image, frames, embedders, await _kept(file, embedders, len(frames)))

    async def frames_of(self, file: FileRef) -> dict[int, bytes]:
        """The video's key frames as its analysis stored them: the bytes its analysis embedded."""
        rows = await video_frames.frames_of(file.id)
        images = await asyncio.gather(*(asyncio.to_thread(read_object, self.location, r.object_key) for r in rows))
        return {row.frame_index: image for row, image in zip(rows, images, strict=True)}

    async def models_for(self, file: FileRef) -> dict[str, ImageEmbedderClient]:
        """The models in use, their spaces made (a video's frames' too)."""
        embedders = await self.embedders.in_use()
        for model_id, embedder in embedders.items():
            # DDL the first time a model is used, in a transaction of its own: never in the completing one, where it
            # would hold the table's lock until the commit.
            await image_embeddings.ensure_space(model_id, embedder.spec.vector_dimension)
            if file.media_type == "video":
                await frame_embeddings.ensure_space(model_id, embedder.spec.vector_dimension)
        return embedders

    async def run(self, inputs: Inputs) -> dict[str, Any]:
        """{"models": {model id: provenance}, "vectors": {model id: vector}, "frames": {model id: {frame index:
        vector}}} for every model in use."""
        return await embedded(inputs.embedders, inputs.kept, inputs.image, inputs.frames)

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
                await frame_embeddings.save(model_id, file.tenant_id, file.id, result["frames"][model_id])
        models = [result["models"][model_id] for model_id in in_use]
        await ai_outputs.record_active_model(file.id, OUTPUT, Task.EMBED_IMAGE.value, models)


async def _kept(file: FileRef, embedders: dict[str, ImageEmbedderClient], frames: int) -> frozenset[str]:
    """During a swap, the models that have the file's vector (and a vector of each of a video's `frames`)."""
    if len(embedders) < 2:
        return frozenset()
    return frozenset(
        [
            model_id
            for model_id in embedders
            if await image_embeddings.vector_of(file.id, model_id) is not None
            and await frame_embeddings.count(file.id, model_id) == frames
        ]
    )


async def embedded(
    embedders: dict[str, ImageEmbedderClient],
    kept: frozenset[str],
    image: bytes,
    frames: Mapping[int, bytes] | None = None,
) -> dict[str, Any]:
    """What `save` takes: each model's provenance, and the vectors of the image and of the `frames` (by frame index),
    from each model in use but those `kept`: one batched request per model."""
    frames = frames or {}
    models: dict[str, dict[str, str]] = {}
    vectors: dict[str, np.ndarray] = {}
    frame_vectors: dict[str, dict[int, np.ndarray]] = {}
    for model_id, embedder in embedders.items():
        models[model_id] = await embedder.provenance()
        if model_id not in kept:
            # a video's frames: one batched request, in the batch lane whoever asked
            found = await embedder.embed([image, *frames.values()], lane="batch" if frames else files_lane())
            vectors[model_id] = found[0]
            frame_vectors[model_id] = dict(zip(frames, found[1:], strict=True))
    return {"models": models, "vectors": vectors, "frames": frame_vectors}
