"""The CPU half of a video's analysis, as a Ray task near the bytes: probe, key frames (pipelines/video/reader.py),
each stored as JPEG at `frames/<index>.jpg`, and the image variants and BlurHash made from the first frame with real
content (a black or blank opening frame is passed over) by the image pipeline's own renderer. Only small facts and
the frames' JPEGs (a few hundred KB in all) travel back.

A failure leaves nothing in S3: the objects this task stored are removed before the error propagates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.engine.step import FileRef, StepFailed
from pipelines.image.render import MAX_PIXELS, ImageError, render
from pipelines.image.source import VARIANT
from pipelines.video import reader
from store.keys import file_prefix, frame_key, variant_key
from store.settings import Settings
from store.step_objects import S3Location, delete_keys, listed, opened, put

THUMBNAIL = VARIANT  # the variant a video's vector is computed from, as an image's

FACTS = (
    "duration_seconds",
    "frame_rate",
    "video_codec",
    "resolution",
    "dimensions",
    "content_created_at",
    "video_details",
    "blur_hash",
    "variants",
    "variant_count",
)


@dataclass(frozen=True)
class VideoOptions:
    max_frames: int = 32
    decode_seconds: float = 300.0
    max_pixels: int = 8192 * 4320
    image_pixels: int = MAX_PIXELS

    @classmethod
    def from_settings(cls, settings: Settings) -> VideoOptions:
        video = settings.video
        return cls(video.max_frames, video.decode_seconds, video.max_pixels, settings.limits.image_pixels)


def analyse_frames(location: S3Location, file: FileRef, options: VideoOptions) -> dict[str, Any]:
    """FACTS (the file's columns), `frames` (store/video_frames.py rows but the models' outputs), `images` (each
    frame's JPEG) and `thumbnail` (the THUMBNAIL variant's bytes: what the image steps read of a video, so that
    its vector is the same whichever step computes it)."""
    with opened(location, file.object_key) as source:
        try:
            facts, frames = reader.key_frames(source, options.max_frames, options.max_pixels, options.decode_seconds)
        except reader.VideoError as error:
            raise StepFailed(str(error)) from None
    stored: list[str] = []
    try:
        rows = [_stored_frame(location, file, index, frame, stored) for index, frame in enumerate(frames)]
        shown = next((index for index, frame in enumerate(frames) if not frame.blank), 0)
        try:
            picture = render(frames[shown].jpeg, options.image_pixels)
        except ImageError as error:
            raise StepFailed(f"The video's frame could not be made into a thumbnail: {error}") from None
        variants = {}
        for variant in picture.variants:
            key = variant_key(file.object_key, variant.name, variant.extension)
            put(location, key, variant.data, variant.content_type)
            stored.append(key)
            variants[variant.name] = {
                "key": key,
                "width": variant.width,
                "height": variant.height,
                "content_type": variant.content_type,
            }
    except BaseException:
        delete_keys(location, stored)
        raise
    return {
        "duration_seconds": facts.duration_seconds,
        "frame_rate": facts.frame_rate,
        "video_codec": facts.video_codec,
        "resolution": facts.resolution,
        "dimensions": {"width": facts.width, "height": facts.height},
        "content_created_at": facts.content_created_at,
        "video_details": facts.details(),
        "blur_hash": picture.blur_hash,
        "variants": variants,
        "variant_count": len(variants) + 1,  # the four and the video itself
        "frames": rows,
        "images": [frame.jpeg for frame in frames],
        "thumbnail": next(variant.data for variant in picture.variants if variant.name == THUMBNAIL),
    }


def _stored_frame(
    location: S3Location, file: FileRef, index: int, frame: reader.KeyFrame, stored: list[str]
) -> dict[str, Any]:
    key = frame_key(file.object_key, index)
    put(location, key, frame.jpeg, "image/jpeg")
    stored.append(key)
    return {
        "frame_index": index,
        "timestamp_seconds": round(frame.timestamp, 3),
        "scene_cut": frame.scene_cut,
        "object_key": key,
        "width": frame.width,
        "height": frame.height,
    }


def discard_outputs(location: S3Location, file: FileRef) -> None:
    """Remove every frame and variant stored for the file: what an analysis that failed for good leaves no row
    pointing to (its task stored them, then the models or the database failed)."""
    for folder in ("frames/", "variants/"):
        delete_keys(location, listed(location, file_prefix(file.object_key) + folder))
