"""The video frames extension (ours beyond the spec): a video's key frames with their times, a presigned URL to
each JPEG, and what the models read of them."""

from __future__ import annotations

import uuid

import msgspec


class VideoFrame(msgspec.Struct):
    frame_index: int
    timestamp_seconds: float
    scene_cut: bool  # the first frame of a scene after a hard cut
    width: int
    height: int
    url: str  # valid for an hour
    visible_text: str | None
    description: str | None


class VideoFrames(msgspec.Struct):
    file_id: uuid.UUID
    video_analysis_status: str | None
    frames: list[VideoFrame]
    total_count: int
