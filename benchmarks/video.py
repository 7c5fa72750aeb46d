"""Videos: (a) our key-frame reader against a plain threaded PyAV decode of the same frames (and decord's, when it is
importable: it is not a dependency; put it on PYTHONPATH to compare), on a generated 10-minute 1080p H.264 clip;
(b) that clip's whole analysis (probe, key frames, thumbnails, OCR and the image embedding of its frames) through a
real `scopix serve` (upload -> job engine -> Ray task and model actors -> completed) against the same steps called
in-process; (c) the peak RSS of the process analysing a 2-hour 1080p clip at a low bit rate (the 10-minute clip
joined 12 times by stream copy: real H.264, made in seconds) with the step's own function.

    .venv/bin/python benchmarks/video.py [--minutes 10] [--hours 2] [--parts abc] [--runs 5] [--work DIR]

Clips are made with the FFmpeg binary of imageio-ffmpeg (testsrc2 at 25 fps, a keyframe every 250 frames, 1 Mbit/s)
and kept in --work (default: a temporary directory) between runs. The last line of output is one JSON object with
the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import av
import imageio_ffmpeg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.service import running_service  # noqa: E402
from benchmarks.upload import PeakRss  # noqa: E402
from pipelines.video import reader  # noqa: E402

FRAMES = 8
BIG = 8192 * 4320


def _ffmpeg(*arguments: str) -> None:
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *arguments]
    subprocess.run(command, check=True)


def clip(work: Path, minutes: float) -> tuple[Path, float]:
    """The 1080p H.264 clip, and the seconds it took to make (0 when it was there already)."""
    path = work / f"clip-{minutes:g}min.mp4"
    started = time.perf_counter()
    if not path.exists():
        source = f"testsrc2=size=1920x1080:rate=25:duration={minutes * 60:g}"
        _ffmpeg("-f", "lavfi", "-i", source, "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "1M",
                "-g", "250", "-pix_fmt", "yuv420p", str(path))  # fmt: skip
    return path, time.perf_counter() - started


def joined(work: Path, part: Path, copies: int) -> tuple[Path, float]:
    """`copies` of `part` one after the other, by stream copy (no re-encoding)."""
    path = work / f"joined-{copies}x-{part.stem}.mp4"
    started = time.perf_counter()
    if not path.exists():
        listing = work / "parts.txt"
        listing.write_text("".join(f"file '{part}'\n" for _ in range(copies)))
        _ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(path))
    return path, time.perf_counter() - started


def pyav_frames(path: Path, times: list[float], as_jpeg: bool) -> float:
    """Seconds for a threaded PyAV decode of the frames at `times`: seek to the keyframe before each, decode up to it,
    convert it to RGB; `as_jpeg`: then, as our reader delivers them, shrunk to 1024 pixels and encoded as JPEG."""
    started = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        assert stream.time_base is not None
        for at in times:
            container.seek(int(at / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.time is not None and frame.time >= at - 1e-3:
                    if as_jpeg:
                        image = frame.to_image()
                        image.thumbnail((reader.FRAME_BOX, reader.FRAME_BOX))
                        image.save(io.BytesIO(), "JPEG", quality=reader.JPEG_QUALITY, optimize=True)
                    else:
                        frame.to_ndarray(format="rgb24")
                    break
    return time.perf_counter() - started


def decord_frames(path: Path, times: list[float]) -> float | None:
    """Seconds for decord's `get_batch` of the same frames (to RGB arrays); None when decord is not importable."""
    try:
        import decord
    except ImportError:
        return None
    started = time.perf_counter()
    try:
        video = decord.VideoReader(str(path), num_threads=0)
        rate = video.get_avg_fps()
        video.get_batch([round(at * rate) for at in times]).asnumpy()
    except decord.DECORDError as error:  # seen now and then near the end of a file (its EOF retry limit)
        print(f"decord failed: {error}", file=sys.stderr)
        return None
    return time.perf_counter() - started


def chosen(path: Path) -> tuple[float, list[reader.Choice]]:
    """Seconds for our reader's choice of key frames (probe, scan, choose), and the choice."""
    started = time.perf_counter()
    with reader.opened(str(path)) as container:
        facts = reader.probe(container, BIG)
        choices = reader.choose(reader.scan(container, reader.Deadline(3600)), facts.duration_seconds, FRAMES)
    return time.perf_counter() - started, choices


def extracted(path: Path, choices: list[reader.Choice]) -> float:
    """Seconds for our reader's decode of the chosen frames (open, probe, then each frame upright, shrunk to 1024
    pixels and encoded as JPEG)."""
    started = time.perf_counter()
    with reader.opened(str(path)) as container:
        reader.probe(container, BIG)
        reader.frames_at(container, choices, reader.Deadline(3600))
    return time.perf_counter() - started


def in_process(path: Path, data_dir: Path) -> float:
    """The analysis's steps called directly on the same clip: store it, the Ray task's function, then OCR of every
    frame and the embedding of the thumbnail's frame with the default models."""
    from models.registry import load, resolve
    from pipelines.engine.step import FileRef
    from pipelines.video.frames import VideoOptions, analyse_frames
    from store.services import local_services
    from store.step_objects import S3Location, _client

    ocr, embedder = load(resolve("ocr")), load(resolve("embed_image"))
    with local_services(data_dir) as settings:
        location = S3Location.from_settings(settings)
        started = time.perf_counter()
        key = f"bench/{uuid.uuid4()}/original"
        _client(location).upload_file(str(path), location.bucket, key)
        found = analyse_frames(location, FileRef(uuid.uuid4(), uuid.uuid4(), key, "video", "video/mp4"), VideoOptions())
        ocr.predict(found["images"])
        embedder.predict([found["thumbnail"]])
        return time.perf_counter() - started


async def through_service(path: Path, base: str, key: str) -> float:
    """Seconds from the upload's first byte to the video's `completed_at`, once a small clip has been analysed (Ray's
    workers and the model actors started, as the in-process run loads its models before its clock starts)."""
    from tests.support.sample_videos import with_text

    warm = path.parent / "warm.mp4"
    warm.write_bytes(with_text())
    await analysed(warm, base, key)
    return await analysed(path, base, key)


async def analysed(path: Path, base: str, key: str) -> float:
    import httpx

    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600) as client:
        started = time.time()
        with path.open("rb") as handle:
            response = await client.post("/api/v2/files/upload", files={"file": (path.name, handle, "video/mp4")})
        response.raise_for_status()
        file_id = response.json()["file_id"]
        while True:
            body = (await client.get(f"/api/v2/files/{file_id}")).json()
            if body["video_analysis_status"] in ("completed", "failed"):
                break
            await asyncio.sleep(0.5)
        assert body["video_analysis_status"] == "completed", body
        status = (await client.get(f"/api/v2/files/{file_id}/processing-status")).json()
        from datetime import datetime

        return datetime.fromisoformat(status["completed_at"]).timestamp() - started


def peak_rss(path: Path, data_dir: Path) -> tuple[int, float, int]:
    """Peak RSS (bytes) of a process that runs the analysis's Ray-task function on `path` from S3, its seconds, and
    the frames it kept."""
    script = f"""
import json, sys, uuid
sys.path.insert(0, {str(ROOT)!r})
from pipelines.engine.step import FileRef
from pipelines.video.frames import VideoOptions, analyse_frames
from store.services import local_services
from store.step_objects import S3Location, _client
with local_services({str(data_dir)!r}) as settings:
    location = S3Location.from_settings(settings)
    key = f"bench/{{uuid.uuid4()}}/original"
    _client(location).upload_file({str(path)!r}, location.bucket, key)
    print("stored", flush=True)
    sys.stdin.readline()
    found = analyse_frames(location, FileRef(uuid.uuid4(), uuid.uuid4(), key, "video", "video/mp4"),
                           VideoOptions(decode_seconds=3600))
    print(len(found["frames"]), flush=True)
"""
    worker = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None and worker.stdin is not None
    assert worker.stdout.readline().strip() == "stored"
    with PeakRss(worker.pid) as sampled:
        started = time.perf_counter()
        worker.stdin.write("\n")
        worker.stdin.flush()
        frames = int(worker.stdout.readline())
        seconds = time.perf_counter() - started
    worker.wait(timeout=120)
    return sampled.peak, seconds, frames


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--hours", type=float, default=2)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=5, help="runs of (a), interleaved; medians are reported")
    parser.add_argument("--parts", default="abc", help="which figures to make: a, b and/or c (default: all)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="scopix-video-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {"minutes": args.minutes}

    path, made_s = clip(work, args.minutes)
    result["clip_mb"] = round(path.stat().st_size / 1e6, 1)
    result["clip_generation_s"] = round(made_s, 1)
    if "a" in args.parts:
        result |= reader_figures(path, args.runs)
        print(f"(a) {json.dumps(result)}", flush=True)

    if "b" in args.parts:
        with running_service(engine__ray_num_cpus="2") as service:
            served_s = asyncio.run(through_service(path, service.base, service.key))
        in_process_s = in_process(path, work / "in-process-data")
        result |= {
            "serve_s": round(served_s, 2),
            "in_process_s": round(in_process_s, 2),
            "serve_overhead": round(served_s / in_process_s - 1, 3),
        }
        print(f"(b) {json.dumps(result)}", flush=True)

    if "c" in args.parts:
        copies = max(1, round(args.hours * 60 / args.minutes))
        long_path, joined_s = joined(work, path, copies)
        peak, analysed_s, kept = peak_rss(long_path, work / "rss-data")
        result |= {
            "long_hours": round(copies * args.minutes / 60, 2),
            "long_mb": round(long_path.stat().st_size / 1e6, 1),
            "long_join_s": round(joined_s, 1),
            "long_analysis_s": round(analysed_s, 1),
            "long_frames": kept,
            "long_peak_rss_mb": round(peak / 1e6, 1),
        }
    print(json.dumps(result))


def reader_figures(path: Path, runs: int) -> dict[str, object]:
    """(a): our reader's choice, then its decode of the chosen frames against PyAV's and decord's of the same."""
    choose_s, choices = chosen(path)
    times = [choice.timestamp for choice in choices]
    measured: dict[str, list[float]] = {"reader": [], "pyav": [], "pyav_jpeg": [], "decord": []}
    for _ in range(runs):  # interleaved, medians: the machine is shared
        measured["reader"].append(extracted(path, choices))
        measured["pyav"].append(pyav_frames(path, times, as_jpeg=False))
        measured["pyav_jpeg"].append(pyav_frames(path, times, as_jpeg=True))
        if (seconds := decord_frames(path, times)) is not None:
            measured["decord"].append(seconds)
    median = {name: statistics.median(values) if values else None for name, values in measured.items()}
    return {
        "frames": len(times),
        "reader_choose_s": round(choose_s, 3),  # probe + scan (keyframes) + choose
        "reader_extract_s": round(median["reader"], 3),  # the chosen frames, upright, 1024 px, JPEG
        "pyav_threaded_s": round(median["pyav"], 3),  # the same frames to full-size RGB arrays
        "pyav_threaded_jpeg_s": round(median["pyav_jpeg"], 3),  # ... and, like ours, to 1024-pixel JPEGs
        "ratio_vs_pyav_jpeg": round(median["reader"] / median["pyav_jpeg"], 3),
        "ratio_vs_pyav": round(median["reader"] / median["pyav"], 3),
        "decord_s": None if median["decord"] is None else round(median["decord"], 3),  # to RGB arrays
    }


if __name__ == "__main__":
    main()
