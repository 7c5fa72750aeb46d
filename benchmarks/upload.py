"""A 100 MB upload through the API (a real `scopix serve` process) against a direct aioboto3
`put_object` of the same bytes to the same S3, in one run; plus the server's RSS growth. With `--files N`, N files
of `--mb` MB each in one batch upload (POST /files/upload/batch), against N `put_object`s.

    .venv/bin/python benchmarks/upload.py [--runs 3] [--mb 100] [--files 1]

The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.service import running_service  # noqa: E402


def _payload(size: int) -> Path:
    """A JPEG header followed by random bytes, written to disk so the client streams it too."""
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(buffer, format="JPEG")
    path = Path(tempfile.mkdtemp()) / "payload.jpg"
    with path.open("wb") as handle:
        handle.write(buffer.getvalue())
        remaining = size - buffer.tell()
        while remaining > 0:
            block = os.urandom(min(remaining, 1 << 20))
            handle.write(block)
            remaining -= len(block)
    return path


class PeakRss:
    """Samples a process's RSS every few milliseconds while active."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _stream_form(path: Path, boundary: str, files: int) -> tuple[int, object]:
    """The file once in a `file` part (the upload route), or `files` times in `files` parts (the batch route)."""
    field = "file" if files == 1 else "files"
    heads = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{n}-{path.name}"\r\n\r\n'.encode()
        for n in range(files)
    ]
    tail = f"--{boundary}--\r\n".encode()

    async def body():
        for head in heads:
            yield head
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk
            yield b"\r\n"
        yield tail

    return sum(map(len, heads)) + files * (path.stat().st_size + 2) + len(tail), body


async def _api_upload(base: str, key: str, path: Path, files: int = 1) -> float:
    length, body = _stream_form(path, "benchboundary", files)
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "multipart/form-data; boundary=benchboundary",
        "Content-Length": str(length),
    }
    route = "/api/v2/files/upload" if files == 1 else "/api/v2/files/upload/batch"
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        started = time.perf_counter()
        response = await client.post(route, headers=headers, content=body())
        elapsed = time.perf_counter() - started
    if response.status_code != 201 or (files > 1 and response.json()["accepted_files"] != files):
        raise RuntimeError(f"upload failed: {response.status_code} {response.text[:2000]}")
    return elapsed


async def _direct_put(data_dir: Path, path: Path, files: int = 1) -> float:
    from store.blob_store import BlobStore
    from store.services import local_services

    with local_services(data_dir) as settings:
        async with BlobStore(settings) as blobs:
            data = path.read_bytes()
            started = time.perf_counter()
            for n in range(files):
                await blobs.client.put_object(Bucket=blobs.bucket, Key=f"bench/direct-{n}", Body=data)
            elapsed = time.perf_counter() - started
            for n in range(files):
                await blobs.client.delete_object(Bucket=blobs.bucket, Key=f"bench/direct-{n}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--files", type=int, default=1, help="more than 1: that many files in one batch upload")
    args = parser.parse_args()
    size = args.mb * 1000 * 1000 * args.files
    path = _payload(args.mb * 1000 * 1000)
    # No engine: the processing of earlier runs' files would compete with the upload for the CPUs.
    with running_service(engine__serve="false") as service:
        # Warm up once through the multipart path (20 MB): first-use imports, pools and heap growth
        # are paid once per process, not per upload.
        asyncio.run(_api_upload(service.base, service.key, _payload(20_000_000)))
        api_times, put_times, growths = [], [], []
        for _ in range(args.runs):
            before = psutil.Process(service.pid).memory_info().rss
            with PeakRss(service.pid) as rss:
                api_times.append(asyncio.run(_api_upload(service.base, service.key, path, args.files)))
            growths.append((rss.peak - before) / (1 << 20))
            put_times.append(asyncio.run(_direct_put(service.data_dir, path, args.files)))
    api = size / statistics.median(api_times) / 1e6
    put = size / statistics.median(put_times) / 1e6
    result = {
        "size_mb": args.mb,
        "files": args.files,
        "api_mb_s": round(api, 1),
        "s3_put_mb_s": round(put, 1),
        "ratio": round(api / put, 3),
        "rss_growth_mb": round(max(growths), 1),
        "runs": args.runs,
    }
    print("RSS growth per run (MB):", [round(g, 1) for g in growths])
    print(f"API {api:.0f} MB/s, direct put_object {put:.0f} MB/s, server RSS growth {max(growths):.1f} MB")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
