"""The `describe` step: an image's AI description from the describe model actor (its batch lane), with a prompt
for the file's content category. Runs in the engine's process.

A description joins the file's `full_descriptions` with its model id and revision (another model's stay); the
active model's becomes its `upload_description`. During a swap both models describe (ModelClients.in_use), and a
model's existing description is kept rather than generated again; the descriptions are saved with the job's
completion, once the models in use are confirmed (ModelClients.still_in_use). No description is ever invented: a
file that asked for none, or a configured model that is not on this machine, ends `skipped` with the reason (the
latter naming the model and how to provide it) rather than failing and retrying what cannot succeed; a model that
generates nothing ends `failed`.

A video is described by its key frames (at most DESCRIBED_FRAMES of them, spread over its length), in one batched
request per model: its description is the frames' distinct descriptions in time order, each after the time of the
frame it describes ("0:12 a forklift in a warehouse"), and each frame keeps its own (store/video_frames.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cluster.model_clients import DescriberClient
from cluster.model_pool import InferenceUnavailable
from models.registry import ModelUnavailable, Task
from pipelines.engine.step import FileRef, Result, files_lane
from pipelines.image.source import image_bytes, image_source, read_object
from pipelines.inference.clients import ModelClients
from store import ai_outputs, video_frames
from store.step_objects import S3Location
from store.video_frames import FrameRow

COLUMNS = ("description_status", "description_error")
SETTING = "SCOPIX_MODELS__DESCRIBE__MODEL"


DESCRIBED_FRAMES = 8  # of a video: a generation each, so a few spread over its length


@dataclass(frozen=True)
class Inputs:
    ended: dict[str, Any] | None = None  # the outcome when there is nothing to describe (skipped, with the reason)
    images: tuple[bytes, ...] = ()  # the image, or a video's frames
    content_category: str = ""
    describers: dict[str, DescriberClient] = field(default_factory=dict)  # the models in use, by model id
    kept: frozenset[str] = frozenset()  # those of them that described the image already (during a swap)
    frames: tuple[FrameRow, ...] = ()  # a video's frames described, in time order (none for an image)


@dataclass(frozen=True)
class DescribeImage:
    location: S3Location
    describers: ModelClients[DescriberClient]

    async def load(self, file: FileRef) -> Inputs:
        source = await image_source(file)
        if not source.auto_describe:
            return Inputs(_ended("skipped", None))
        try:
            describers = await self.describers.in_use()
            for describer in describers.values():
                describer.spec  # noqa: B018  (resolves the model: reads config files, loads no weights)
        except (InferenceUnavailable, ModelUnavailable) as error:
            return Inputs(_ended("skipped", _unavailable(error)))
        described = await ai_outputs.described_models(file.id) if len(describers) > 1 else set()
        kept = frozenset(described & set(describers))
        if file.media_type == "video":
            frames = spread(await video_frames.frames_of(file.id), DESCRIBED_FRAMES)
            if not frames:
                return Inputs(_ended("skipped", "the video has no key frames to describe"))
            images = await asyncio.gather(
                *(asyncio.to_thread(read_object, self.location, f.object_key) for f in frames)
            )
            return Inputs(None, tuple(images), source.content_category, describers, kept, tuple(frames))
        image = await image_bytes(self.location, source)
        return Inputs(None, (image,), source.content_category, describers, kept)

    async def run(self, inputs: Inputs) -> dict[str, Any]:
        """The outcome's columns, and `entries`: the new description of each model in use (by model id) but those
        kept; `models`: the models in use."""
        if inputs.ended is not None:
            return inputs.ended
        entries: dict[str, dict[str, Any]] = {}
        frames: dict[int, str] = {}
        for model_id, describer in inputs.describers.items():
            if model_id in inputs.kept:
                continue
            try:
                items = [(image, inputs.content_category) for image in inputs.images]
                # a video's frames: one batched request, in the batch lane whoever asked
                texts = await describer.describe(items, lane="batch" if inputs.frames else files_lane())
            except ModelUnavailable as error:
                return _ended("skipped", _unavailable(error))
            model = await describer.provenance()
            text = _of_frames(inputs.frames, texts) if inputs.frames else texts[0].strip()
            if not text:
                return _ended("failed", f"{model['model_id']} generated no description for this {_kind(inputs)}")
            if inputs.frames:  # the frames keep the descriptions of the last model in use (the active one)
                frames = {frame.frame_index: said.strip() for frame, said in zip(inputs.frames, texts, strict=True)}
            entries[model_id] = {
                "description": text,
                **model,
                "generated_at": datetime.now(UTC).isoformat(),
                "content_category": inputs.content_category,
            }
        completed = {"description_status": "completed", "description_error": None}
        return {**completed, "entries": entries, "models": list(inputs.describers), "frames": frames}

    async def save(self, file: FileRef, result: Result) -> None:
        if result["description_status"] != "completed":
            return
        in_use = await self.describers.still_in_use(result["models"])
        entries = [entry for model_id, entry in result["entries"].items() if model_id in in_use]
        if entries:
            await ai_outputs.add_descriptions(file.id, Task.DESCRIBE.value, entries)
            await video_frames.describe_frames(file.id, result["frames"])


def spread(frames: list[FrameRow], most: int) -> list[FrameRow]:
    """At most `most` (2 or more) of the frames, evenly spaced over them, the first and the last included."""
    if len(frames) <= most:
        return frames
    return [frames[round(index * (len(frames) - 1) / (most - 1))] for index in range(most)]


def _kind(inputs: Inputs) -> str:
    return "video" if inputs.frames else "image"


def _of_frames(frames: tuple[FrameRow, ...], texts: list[str]) -> str:
    """The distinct frame descriptions in time order, each after its frame's time (m:ss); a description that
    repeats the one before it is left out."""
    lines, previous = [], None
    for frame, text in zip(frames, texts, strict=True):
        said = text.strip()
        if said and said != previous:
            minutes, seconds = divmod(int(frame.timestamp_seconds), 60)
            lines.append(f"{minutes}:{seconds:02d} {said}")
        previous = said or previous
    return "\n".join(lines)


def _unavailable(error: Exception) -> str:
    return f"the describe model ({SETTING}) is unavailable: {error}"


def _ended(status: str, reason: str | None) -> dict[str, Any]:
    return {"description_status": status, "description_error": reason, "entries": {}, "models": [], "frames": {}}
