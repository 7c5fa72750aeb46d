"""Real videos made by FFmpeg (the binary bundled with imageio-ffmpeg: no system package needed), small and short,
each made once per test session and kept in a temporary directory."""

from __future__ import annotations

import functools
import io
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
from PIL import Image, ImageDraw, ImageFont

from testkit.photos import photo

SIZE = "320x240"
CREATED = "2024-05-06T07:08:09Z"
# The 3-cut clip: four scenes of SCENE_SECONDS each, so its cuts are at 1.5, 3.0 and 4.5 s.
SCENES = ("testsrc2", "smptebars", "rgbtestsrc", "yuvtestsrc")
SCENE_SECONDS = 1.5
TEXT = "LOADING DOCK 7"
PHOTO = photo(7, (320, 240))  # the later scene of `cut_to_photo`


@functools.cache
def _directory() -> Path:
    return Path(tempfile.mkdtemp(prefix="scopix-videos-"))


def _ffmpeg(*arguments: str) -> None:
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *arguments]
    subprocess.run(command, check=True, timeout=120)


def _made(name: str, *arguments: str) -> bytes:
    path = _directory() / name
    if not path.exists():
        _ffmpeg(*arguments, str(path))
    return path.read_bytes()


def _source(name: str, seconds: float, rate: int = 25) -> list[str]:
    return ["-f", "lavfi", "-i", f"{name}=size={SIZE}:rate={rate}:duration={seconds}"]


H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


@functools.cache
def rotated_mp4() -> bytes:
    """2 s of 320×240 H.264 at 25 fps with AAC audio, tagged to be shown turned 90° (so 240×320) and with a
    creation time."""
    plain = _made("plain.mp4", *_source("testsrc2", 2), "-f", "lavfi", "-i", "sine=duration=2", *H264, "-c:a", "aac")
    del plain
    return _made(
        "rotated.mp4",
        "-display_rotation",
        "90",
        "-i",
        str(_directory() / "plain.mp4"),
        "-c",
        "copy",
        "-metadata",
        f"creation_time={CREATED}",
    )


@functools.cache
def vp9_webm() -> bytes:
    """2 s of 320×240 VP9 at 25 fps in WebM."""
    return _made("clip.webm", *_source("testsrc2", 2), "-c:v", "libvpx-vp9", "-deadline", "realtime", "-b:v", "200k")


@functools.cache
def three_cuts() -> bytes:
    """Four scenes of SCENE_SECONDS (SCENES), joined by hard cuts, in H.264 with a keyframe every 250 frames."""
    inputs = [argument for name in SCENES for argument in _source(name, SCENE_SECONDS)]
    joined = "".join(f"[{index}:v]" for index in range(len(SCENES))) + f"concat=n={len(SCENES)}:v=1:a=0[v]"
    return _made("cuts.mp4", *inputs, "-filter_complex", joined, "-map", "[v]", *H264, "-g", "250")


@functools.cache
def cut_to_photo() -> bytes:
    """A test pattern for SCENE_SECONDS (the thumbnail's frame), then a hard cut to PHOTO held for SCENE_SECONDS."""
    picture = _directory() / "photo.png"
    PHOTO.save(picture)
    return _made(
        "cut-to-photo.mp4",
        *_source("testsrc2", SCENE_SECONDS),
        *["-loop", "1", "-framerate", "25", "-t", str(SCENE_SECONDS), "-i", str(picture)],
        "-filter_complex",
        "[0:v][1:v]concat=n=2:v=1:a=0[v]",
        "-map",
        "[v]",
        *H264,
    )


@functools.cache
def single_shot(seconds: int = 8) -> bytes:
    """One continuous shot: a slowly moving test pattern, `seconds` long, that starts with a black second."""
    return _made(
        f"shot-{seconds}.mp4",
        *_source("testsrc2", seconds),
        "-vf",
        "drawbox=enable='lt(t,1)':color=black:t=fill",
        *H264,
    )


@functools.cache
def with_text() -> bytes:
    """3 s showing TEXT in black on white, large enough to read."""
    picture = _directory() / "text.png"
    image = Image.new("RGB", (640, 360), "white")
    ImageDraw.Draw(image).text((40, 140), TEXT, fill="black", font=ImageFont.load_default(size=48))
    image.save(picture)
    return _made("text.mp4", "-loop", "1", "-i", str(picture), "-t", "3", "-r", "10", *H264)


@functools.cache
def audio_only() -> bytes:
    """2 s of a tone in an MP4, no video stream."""
    return _made("audio.mp4", "-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac")


def truncated() -> bytes:
    """The rotated MP4 cut in half: its `moov` (written at the end) is gone."""
    whole = rotated_mp4()
    return whole[: len(whole) // 2]


def unknown_codec() -> bytes:
    """The VP9 WebM with its codec renamed to one no decoder knows (Matroska's CodecID "V_VP9" -> "V_QQ9")."""
    return vp9_webm().replace(b"V_VP9", b"V_QQ9", 1)


def broken_moov() -> bytes:
    """The rotated MP4 with the inside of its `moov` (its index, written at the end) overwritten."""
    whole = bytearray(rotated_mp4())
    start = whole.rfind(b"moov") + 200
    whole[start : start + 1000] = b"\xab" * 1000
    return bytes(whole)


def huge_picture(side: int = 16_000) -> bytes:
    """A Matroska MJPEG video of one 16×16 JPEG whose header claims `side`×`side` pixels (FFmpeg's own bound stops
    near 16,000: the 100,000-pixel sides of a forged H.264 header never reach a decoder), muxed by PyAV."""
    picture = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(picture, "JPEG")
    data = bytearray(picture.getvalue())
    frame_header = data.find(b"\xff\xc0")  # SOF0: marker, length, precision, height, width
    data[frame_header + 5 : frame_header + 9] = side.to_bytes(2, "big") * 2
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width = stream.height = side
        stream.pix_fmt = "yuvj420p"
        packet = av.Packet(bytes(data))
        packet.stream, packet.pts, packet.dts, packet.time_base = stream, 0, 0, Fraction(1, 1)
        container.mux(packet)
    return buffer.getvalue()
