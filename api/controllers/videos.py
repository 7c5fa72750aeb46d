"""Video routes: the key frames of a video (400 on a file that is not a video). At most SCOPIX_VIDEO__MAX_FRAMES
frames exist per video, so the answer is never paged."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath

from api.deps import Blobs, Tenant
from api.schemas.videos import VideoFrame, VideoFrames
from api.shaping import shaped
from api.variant_urls import VARIANT_SECONDS
from store import files, video_frames
from store.errors import WrongMediaType


class VideosController(Controller):
    path = "/api/v2/files"
    tags = ("videos",)

    @get("/{file_id:str}/frames")
    async def frames(self, tenant: Tenant, blobs: Blobs, file_id: FromPath[str]) -> VideoFrames:
        """The video's key frames in time order; none until its analysis completes."""
        row = await files.get_file(tenant.id, file_id)
        if row.media_type != "video":
            raise WrongMediaType(f"key frames exist for videos only; this file is a {row.media_type}")
        frames = [
            shaped(
                VideoFrame,
                frame,
                url=await blobs.presigned_get(frame.object_key, VARIANT_SECONDS, content_type="image/jpeg"),
            )
            for frame in await video_frames.frames_of(row.id)
        ]
        return VideoFrames(row.id, row.video_analysis_status, frames, len(frames))
