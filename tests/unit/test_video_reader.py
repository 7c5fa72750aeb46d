"""The pure video reader on real clips made by FFmpeg: its limits (declared size, decode time), its failures in
plain words, and the choice of key frames."""

from __future__ import annotations

import io

import numpy as np
import pytest

from pipelines.video import reader
from tests.support import sample_videos

BIG = 8192 * 4320


def read(content: bytes, max_frames: int = 32, max_pixels: int = BIG, seconds: float = 60.0):
    return reader.key_frames(io.BytesIO(content), max_frames, max_pixels, seconds)


def test_a_picture_declared_larger_than_the_bound_is_refused_before_decoding() -> None:
    with pytest.raises(reader.VideoError, match=r"\(320×240\) has more than 76,799 pixels"):
        read(sample_videos.vp9_webm(), max_pixels=320 * 240 - 1)


def test_a_forged_16000_pixel_square_is_refused_with_the_default_bound() -> None:
    with pytest.raises(reader.VideoError, match=r"\(16000×16000\) has more than 35,389,440 pixels"):
        read(sample_videos.huge_picture())


def test_decoding_past_its_time_fails_with_the_limit() -> None:
    with pytest.raises(reader.VideoError, match=r"took longer than 1e-06 s"):
        read(sample_videos.three_cuts(), seconds=1e-6)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty, truncated or corrupt"),
        (b"\x00\x00\x00\x18ftypmp42" + bytes(64), "empty, truncated or corrupt"),
        (sample_videos.audio_only(), "no video stream (it holds audio only)"),
        (sample_videos.broken_moov(), "no video stream (it holds data only)"),
        (sample_videos.unknown_codec(), "codec is not supported"),
    ],
)
def test_what_is_not_a_readable_video_fails_in_plain_words(content: bytes, words: str) -> None:
    with pytest.raises(reader.VideoError, match=words.replace("(", r"\(").replace(")", r"\)")):
        read(content)


def test_the_cap_keeps_the_strongest_cuts_and_the_first_frame() -> None:
    facts, frames = read(sample_videos.three_cuts(), max_frames=3)
    assert len(frames) == 3 and frames[0].timestamp == 0.0
    assert sum(frame.scene_cut for frame in frames) == 2
    assert facts.duration_seconds == pytest.approx(6.08, abs=0.05)


def test_choose_spreads_frames_over_a_long_single_shot() -> None:
    still = np.full(432, 128, np.uint8)
    moving = [reader.Candidate(float(second), still + second % 3) for second in range(7200)]
    choices = reader.choose(moving, 7200.0, 32)
    times = [choice.timestamp for choice in choices]
    assert len(choices) == 32 and not any(choice.scene_cut for choice in choices)
    assert times[0] == 0.0 and times[-1] > 7000 and times == sorted(times)
    assert all(choice.blank for choice in choices)  # a flat grey picture is blank


def test_frames_are_jpegs_no_larger_than_the_largest_variant() -> None:
    _, frames = read(sample_videos.with_text())
    assert all(frame.jpeg[:3] == b"\xff\xd8\xff" and (frame.width, frame.height) == (640, 360) for frame in frames)
