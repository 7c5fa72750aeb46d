"""The `video_analysis` step: a video's probe, key frames and thumbnails in a Ray task (pipelines/video/frames.py),
then its frames through the model actors that images use, in their batch lane, one batched request per video and
model: OCR of every frame, and the image embedding of every frame and of the frame its thumbnail shows (its
`medium_750` variant, as an image's), in the image space: an image finds the video by any of its frames, and the
video's own vector (`/similar` from it) is its thumbnail's. Drives `video_analysis_status` with the variant, OCR
and embedding statuses: they end together.

This step is where a video's analysis ends: `save` (completed, in the transaction that completes the job) and
`give_up` (failed for good, in the transaction that fails the job); whatever must follow the end of an analysis
belongs in those two.

A video's visible text is the distinct lines read in its frames, first seen first; `text_regions` says at which
frame times each line was seen. Every output keeps its model (`ai_models`), and a swap of the image embedder
re-embeds videos like images (its `embed_image` step reads the video's `medium_750` variant and its stored frames:
the same bytes, so the same vectors).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from cluster.model_clients import ImageEmbedderClient, OcrClient
from pipelines.engine.step import FileRef, Result, RunContext, in_time, run_task
from pipelines.image.embedding import EmbedImage, embedded
from pipelines.video.frames import FACTS, VideoOptions, analyse_frames, discard_outputs
from store import ai_outputs, quotas, video_frames

COLUMNS = (*FACTS, "visible_text", "text_regions")


@dataclass(frozen=True)
class Inputs:
    file: FileRef
    # The image models in use, by model id: each embeds every frame (the frames are new, even during a swap).
    embedders: dict[str, ImageEmbedderClient]


@dataclass(frozen=True)
class AnalyseVideo:
    options: VideoOptions
    ocr: OcrClient
    embed: EmbedImage

    async def load(self, file: FileRef) -> Inputs:
        return Inputs(file, await self.embed.models_for(file))

    async def __call__(self, inputs: Inputs, context: RunContext) -> dict[str, Any]:
        found = await run_task(context, analyse_frames, context.location, inputs.file, self.options)
        images: list[bytes] = found.pop("images")
        frames = {frame["frame_index"]: image for frame, image in zip(found["frames"], images, strict=True)}
        read = await in_time(context, self.ocr.read(images, lane="batch"))
        vectors = await in_time(context, embedded(inputs.embedders, frozenset(), found.pop("thumbnail"), frames))
        for frame, seen in zip(found["frames"], read, strict=True):
            frame["visible_text"] = seen["text"] or None
        return {
            **found,
            **visible_text(found["frames"], read),
            "ocr_model": await self.ocr.provenance(),
            "embedding": vectors,
        }

    async def save(self, file: FileRef, result: Result) -> None:
        await video_frames.replace_frames(file.id, file.tenant_id, result["frames"])
        await ai_outputs.record_models(file.id, {"ocr": result["ocr_model"]})
        await self.embed.save(file, result["embedding"])
        await quotas.settle_video_reservation(file.id, succeeded=True)

    async def give_up(self, file: FileRef) -> None:
        await asyncio.to_thread(discard_outputs, self.embed.location, file)
        await quotas.settle_video_reservation(file.id, succeeded=False)


def visible_text(frames: list[dict[str, Any]], read: list[dict[str, Any]]) -> dict[str, Any]:
    """`visible_text`: the distinct lines read, first seen first (null: none); `text_regions`: each line with the
    times of the frames it was read in, and its best confidence."""
    seen: dict[str, dict[str, Any]] = {}
    for frame, found in zip(frames, read, strict=True):
        for region in found["regions"]:
            line = " ".join(region["text"].split())
            if not line:
                continue
            entry = seen.setdefault(line, {"text": line, "timestamps": [], "confidence": 0.0})
            if frame["timestamp_seconds"] not in entry["timestamps"]:
                entry["timestamps"].append(frame["timestamp_seconds"])
            entry["confidence"] = round(max(entry["confidence"], float(region["confidence"])), 4)
    return {"visible_text": "\n".join(seen) or None, "text_regions": list(seen.values())}
