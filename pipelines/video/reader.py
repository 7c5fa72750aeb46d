"""Video facts and key frames: the pure part of the video pipeline (no S3, no DB, no Ray; the caller stores).

PyAV (FFmpeg's libraries in-process) both probes and decodes: the probe is the container's header (milliseconds,
no subprocess per field), and it names the codec, the pixel format and the rotation that decord does not, and reads
AV1 (benchmarks/video.py has the figures against decord and a plain threaded PyAV decode).

Key frames are chosen in two streaming passes, so memory stays flat whatever the length:

1. `scan`: every decoded frame is reduced to a tiny RGB signature (SIGNATURE pixels); only the signatures and
   timestamps are kept. A short video has every frame decoded; a long one (FULL_DECODE_PIXELS) only its keyframes
   (the decoder skips the others, `skip_frame=NONKEY`): encoders start a keyframe at a hard cut, and they come every
   few seconds anyway, so cuts and coverage survive at a fraction of the work (a 2-hour 1080p video decodes ~1
   frame in 250).
2. `choose` cuts where the signature jumps (a scene's first frame) and adds frames spread evenly over the length
   (at most one per MIN_SPACING_SECONDS), at most `max_frames` in all; `frames_at` then seeks to each chosen time
   and decodes just that frame, upright (the rotation tag applied) and no larger than FRAME_BOX.

Every failure (not a video, truncated, no video stream, a codec FFmpeg cannot decode, a declared picture too large,
decoding past its time) is a VideoError with a message for users; FFmpeg's own words go to the log.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import IO, Any

import av
import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

SIGNATURE = (16, 9)  # pixels of a frame's signature: enough to tell scenes apart, nothing to decode twice
CUT_DISTANCE = 0.12  # mean absolute RGB difference (0-1) between two consecutive signatures that makes a cut
BLANK_SPREAD = 0.02  # a signature whose values vary less than this is a blank frame (black, white, one colour)
# A video of at most this many pixels in all its frames (a minute of 1080p at 25 fps) has every frame scanned; a
# longer or larger one its keyframes only.
FULL_DECODE_PIXELS = 1_500 * 1920 * 1080
MIN_SPACING_SECONDS = 1.0  # evenly spread frames are at least this far apart (a 3-second clip gets 3, not 32)
FRAME_BOX = 1024  # a key frame's larger side, at most: the largest image variant
JPEG_QUALITY = 85


class VideoError(Exception):
    """A video we cannot analyse; str(exc) is a clear message for users."""


@dataclass(frozen=True)
class VideoFacts:
    container: str  # FFmpeg's demuxer, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"
    duration_seconds: float
    frame_rate: float  # the average frame rate
    real_frame_rate: float | None  # FFmpeg's guess of the real (base) rate, e.g. 60 for a 30 fps average with drops
    video_codec: str  # "h264", "hevc", "vp9", "av1", ...
    width: int  # as displayed: the rotation applied
    height: int
    rotation: int  # degrees counter-clockwise that the player turns the stored picture
    bit_rate: int | None
    pixel_format: str | None
    audio_codec: str | None
    content_created_at: datetime | None  # the container's creation_time tag

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"

    def details(self) -> dict[str, Any]:
        """What the probe found beyond the spec's columns."""
        return {
            "container": self.container,
            "real_frame_rate": self.real_frame_rate,
            "rotation": self.rotation,
            "bit_rate": self.bit_rate,
            "pixel_format": self.pixel_format,
            "audio_codec": self.audio_codec,
        }


@dataclass(frozen=True)
class Candidate:
    """A scanned frame: when, and its signature (SIGNATURE pixels × RGB as uint8: 432 bytes, so that even a day-long
    video's keyframes take a few MB)."""

    timestamp: float
    signature: np.ndarray

    @property
    def blank(self) -> bool:
        return float(self.signature.std()) / 255 < BLANK_SPREAD

    def distance(self, other: Candidate) -> float:
        """The mean absolute difference of two signatures, 0-1."""
        return float(np.abs(self.signature.astype(np.int16) - other.signature).mean()) / 255


@dataclass(frozen=True)
class Choice:
    timestamp: float
    scene_cut: bool  # the first frame of a scene after a hard cut
    blank: bool


@dataclass(frozen=True)
class KeyFrame:
    timestamp: float
    scene_cut: bool
    blank: bool
    width: int
    height: int
    jpeg: bytes


class Deadline:
    """The decode-time cap of one video: a video that decodes forever fails instead of holding a worker."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self._end:
            raise VideoError(f"Decoding the video took longer than {self.seconds:g} s, the most we allow.")


@contextmanager
def opened(source: str | IO[bytes]) -> Iterator[av.container.InputContainer]:
    """The container, or VideoError when FFmpeg cannot read it as a media file at all."""
    try:
        container = av.open(source, "r", metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError) as exc:
        log.info("video could not be opened: %s", exc)
        raise VideoError(
            "The file is not a video we can read: it is empty, truncated or corrupt (no readable header)."
        ) from None
    try:
        yield container
    finally:
        container.close()


def video_stream(container: av.container.InputContainer) -> av.VideoStream:
    if not container.streams.video:
        kinds = sorted({stream.type for stream in container.streams})
        found = f" (it holds {', '.join(kinds)} only)" if kinds else ""
        raise VideoError(f"The file has no video stream{found}.")
    return container.streams.video[0]


def probe(container: av.container.InputContainer, max_pixels: int) -> VideoFacts:
    """The container's facts, from its header and the first decoded frame (the rotation is a frame's side data).
    A picture declared larger than `max_pixels` is refused before any frame is decoded."""
    stream = video_stream(container)
    context = stream.codec_context
    if context is None:  # FFmpeg has no decoder for the codec the container names
        raise VideoError("The video's codec is not supported: no decoder here can read it.")
    stored_width, stored_height = context.width, context.height
    if stored_width * stored_height > max_pixels:
        raise VideoError(
            f"The video's picture ({stored_width}×{stored_height}) has more than {max_pixels:,} pixels, the most we "
            "process."
        )
    if stored_width <= 0 or stored_height <= 0:
        raise VideoError("The video stream declares no picture size: it is corrupt.")
    context.thread_type = "AUTO"  # before the codec opens: frame and slice threads over the worker's cores
    first = first_frame(container, stream)
    rotation = int(first.rotation or 0) % 360
    width, height = (stored_height, stored_width) if rotation in (90, 270) else (stored_width, stored_height)
    audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    return VideoFacts(
        container=container.format.name,
        duration_seconds=round(duration_of(container, stream), 3),
        frame_rate=_rate(stream.average_rate) or _rate(stream.guessed_rate) or 0.0,
        real_frame_rate=_rate(stream.base_rate),
        video_codec=context.name,
        width=width,
        height=height,
        rotation=rotation,
        bit_rate=container.bit_rate or context.bit_rate or None,
        pixel_format=context.pix_fmt,
        audio_codec=audio,
        content_created_at=_created_at(container.metadata, stream.metadata),
    )


def first_frame(container: av.container.InputContainer, stream: av.VideoStream) -> av.VideoFrame:
    """The first frame, or VideoError: a stream without one is empty, truncated, or in a codec FFmpeg lacks."""
    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError as exc:
        log.info("video could not be decoded: %s", exc)
        raise VideoError(_undecodable(stream)) from None
    raise VideoError(_undecodable(stream))


def _undecodable(stream: av.VideoStream) -> str:
    codec = stream.codec_context.name if stream.codec_context is not None else "unknown"
    return (
        f"The video stream ({codec}) has no frame we can decode: it is empty, truncated or corrupt, or its codec is "
        "not supported."
    )


def duration_of(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _rate(rate: Any) -> float | None:
    return round(float(rate), 3) if rate else None


def _created_at(*tag_sets: dict[str, str]) -> datetime | None:
    """ISO 8601 `creation_time` (MP4/MOV, Matroska's DATE_*), always timezone-aware; None when absent, invalid or
    the epoch of an unset MP4 field."""
    for tags in tag_sets:
        for name in ("creation_time", "DATE_RECORDED", "DATE_ENCODED", "date"):
            value = tags.get(name) or tags.get(name.lower())
            if not value:
                continue
            try:
                moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                continue
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            if moment.year > 1970:
                return moment
    return None


def scan(container: av.container.InputContainer, deadline: Deadline) -> list[Candidate]:
    """Every frame's signature (a short video) or every keyframe's (a long one), streaming."""
    stream = video_stream(container)
    container.seek(0)
    context = stream.codec_context
    expected = stream.frames or duration_of(container, stream) * float(stream.average_rate or 30)
    every_frame = expected * context.width * context.height <= FULL_DECODE_PIXELS
    context.skip_frame = "DEFAULT" if every_frame else "NONKEY"
    start = _start(stream)
    candidates: list[Candidate] = []
    try:
        for frame in container.decode(stream):
            deadline.check()
            if frame.time is None:
                continue
            small = frame.reformat(width=SIGNATURE[0], height=SIGNATURE[1], format="rgb24").to_ndarray()
            candidates.append(Candidate(frame.time - start, small.reshape(-1)))
    except av.FFmpegError as exc:  # a truncated tail: keep what was decoded before it
        log.info("video decoding stopped early: %s", exc)
    finally:
        context.skip_frame = "DEFAULT"
    if not candidates:
        raise VideoError(_undecodable(stream))
    return candidates


def _start(stream: av.VideoStream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0


def choose(candidates: list[Candidate], duration: float, max_frames: int) -> list[Choice]:
    """Scene starts (the first frame, then each frame whose signature jumps from the one before; the largest jumps
    first when there are more than `max_frames`), then frames spread evenly over the video in the room left, in
    time order."""
    jumps = [after.distance(before) for before, after in pairwise(candidates)]
    cuts = [index + 1 for index, jump in enumerate(jumps) if jump > CUT_DISTANCE]
    cuts = sorted(sorted(cuts, key=lambda index: -jumps[index - 1])[: max_frames - 1])
    chosen = {0: False, **dict.fromkeys(cuts, True)}
    room = max_frames - len(chosen)
    length = max(duration, candidates[-1].timestamp)
    slots = min(room, math.floor(length / MIN_SPACING_SECONDS))
    times = np.array([candidate.timestamp for candidate in candidates])
    for slot in range(slots):
        target = (slot + 0.5) * length / slots
        nearest = int(np.abs(times - target).argmin())
        chosen.setdefault(nearest, False)
    return [Choice(candidates[index].timestamp, cut, candidates[index].blank) for index, cut in sorted(chosen.items())][
        :max_frames
    ]


def frames_at(container: av.container.InputContainer, choices: list[Choice], deadline: Deadline) -> list[KeyFrame]:
    """The chosen frames, each found by a seek to the keyframe before it and a decode up to it, upright and no
    larger than FRAME_BOX, as JPEG."""
    stream = video_stream(container)
    start = _start(stream)
    frames: list[KeyFrame] = []
    for choice in choices:
        target = choice.timestamp + start
        if stream.time_base is None:  # no seeking without a time base: container-wide microseconds
            container.seek(int(target * av.time_base), backward=True, any_frame=False)
        else:
            container.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
        frame = _decode_until(container, stream, target, deadline)
        if frame is not None:
            width, height, jpeg = _jpeg(frame)
            frames.append(KeyFrame(choice.timestamp, choice.scene_cut, choice.blank, width, height, jpeg))
    if not frames:
        raise VideoError(_undecodable(stream))
    return frames


def _decode_until(
    container: av.container.InputContainer, stream: av.VideoStream, target: float, deadline: Deadline
) -> av.VideoFrame | None:
    """The first frame at or after `target` (a hair of tolerance for rounded timestamps), or the last one decoded
    when the stream ends or breaks first."""
    last = None
    try:
        for frame in container.decode(stream):
            deadline.check()
            last = frame
            if frame.time is not None and frame.time >= target - 1e-3:
                break
    except av.FFmpegError as exc:
        log.info("video decoding stopped early: %s", exc)
    return last


def upright(frame: av.VideoFrame) -> Image.Image:
    """The frame as displayed (its rotation applied), no larger than FRAME_BOX: scaled while still small in FFmpeg's
    own scaler, then turned."""
    width, height = frame.width, frame.height
    scale = min(1.0, FRAME_BOX / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = frame.to_image(width=size[0], height=size[1])
    rotation = int(frame.rotation or 0) % 360
    return image.rotate(rotation, expand=True) if rotation else image


def _jpeg(frame: av.VideoFrame) -> tuple[int, int, bytes]:
    image = upright(frame)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return image.width, image.height, buffer.getvalue()


def key_frames(
    source: str | IO[bytes], max_frames: int, max_pixels: int, decode_seconds: float
) -> tuple[VideoFacts, list[KeyFrame]]:
    """The video's facts and its key frames (at most `max_frames`), or VideoError."""
    deadline = Deadline(decode_seconds)
    with opened(source) as container:
        facts = probe(container, max_pixels)
        candidates = scan(container, deadline)
        choices = choose(candidates, facts.duration_seconds, max_frames)
        return facts, frames_at(container, choices, deadline)
