"""The presigned flow against S3 itself, on a real `scopix serve`: each run uploads a fresh intent's parts (8 MiB,
4 in flight) straight to the presigned URLs with httpx and confirms each, against the same parts sent with aioboto3
straight to S3 (`upload_ratio`: aioboto3's time over the presigned flow's); then times `complete`, whose read-back
(the object streamed from S3 to verify its SHA-256 and inspect its content) is compared with a plain aioboto3 GET of
the stored object read to the end (`complete_vs_get`); and the server's peak RSS growth across the upload and its
`complete`. The payload is an MP4 grown by a `free` atom of random bytes, so inspection walks a real format.

    .venv/bin/python benchmarks/direct_upload.py [--runs 3] [--mb 256]

The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.service import running_service  # noqa: E402
from benchmarks.upload import PeakRss  # noqa: E402

MIB = 1024 * 1024
PART_BYTES = 8 * MIB
IN_FLIGHT = 4


def _payload(megabytes: int) -> tuple[Path, str]:
    """An MP4 followed by a `free` atom of random bytes, on disk, and its SHA-256."""
    from tests.support.sample_files import mp4

    head = mp4()
    padding = megabytes * MIB - len(head) - 8
    path = Path(tempfile.mkdtemp()) / "payload.mp4"
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for piece in (head, struct.pack(">I4s", padding + 8, b"free")):
            handle.write(piece)
            digest.update(piece)
        while padding:
            piece = os.urandom(min(padding, 4 * MIB))
            handle.write(piece)
            digest.update(piece)
            padding -= len(piece)
    return path, digest.hexdigest()


def _part(path: Path, number: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek((number - 1) * PART_BYTES)
        return handle.read(PART_BYTES)


async def _upload(client: httpx.AsyncClient, path: Path, sha256: str) -> tuple[str, float]:
    """An intent whose parts are sent and confirmed; its id and the seconds from the first part to the last
    confirmation."""
    body = {
        "filename": "bench.mp4",
        "content_type": "video/mp4",
        "size_bytes": path.stat().st_size,
        "claimed_file_hash": sha256,
        "upload_mode": "multipart",
        "part_size_bytes": PART_BYTES,
    }
    created = (await client.post("/api/v2/files/direct-uploads", json=body)).raise_for_status().json()
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def send(s3: httpx.AsyncClient, part: dict) -> None:
        number = part["part_number"]
        async with gate:
            data = _part(path, number)
            etag = (await s3.put(part["url"], content=data)).raise_for_status().headers["etag"]
            confirm = {"part_number": number, "etag": etag, "size_bytes": len(data)}
            route = f"/api/v2/files/direct-uploads/{created['upload_id']}/parts/confirm"
            (await client.post(route, json=confirm)).raise_for_status()

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=300) as s3:
        await asyncio.gather(*(send(s3, part) for part in created["part_urls"]))
    return str(created["upload_id"]), time.perf_counter() - started


async def _complete(client: httpx.AsyncClient, upload_id: str) -> tuple[float, str]:
    started = time.perf_counter()
    response = await client.post(f"/api/v2/files/direct-uploads/{upload_id}/complete")
    elapsed = time.perf_counter() - started
    if response.status_code != 202:
        raise RuntimeError(f"complete failed: {response.status_code} {response.text[:2000]}")
    return elapsed, response.json()["object_key"]


async def _with_aioboto3(data_dir: Path, path: Path) -> float:
    """The same parts, 4 in flight, sent with aioboto3 straight to S3 (then aborted); seconds."""
    from store.blob_store import BlobStore
    from store.services import local_services

    key = f"bench/aioboto3/{uuid.uuid4()}"
    with local_services(data_dir) as settings:
        async with BlobStore(settings) as blobs:
            upload_id = await blobs.start_multipart(key, "video/mp4")
            gate = asyncio.Semaphore(IN_FLIGHT)

            async def send(number: int) -> None:
                async with gate:
                    data = _part(path, number)
                    await blobs.client.upload_part(
                        Bucket=blobs.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
                    )

            started = time.perf_counter()
            await asyncio.gather(*(send(number) for number in range(1, -(-path.stat().st_size // PART_BYTES) + 1)))
            elapsed = time.perf_counter() - started
            await blobs.discard_upload(key, upload_id)
            return elapsed


async def _plain_get(data_dir: Path, key: str) -> float:
    from api.uploads.direct import READ_CHUNK_BYTES
    from store.blob_store import BlobStore
    from store.services import local_services

    with local_services(data_dir) as settings:
        async with BlobStore(settings) as blobs:
            started = time.perf_counter()
            async for _ in blobs.read_chunks(key, READ_CHUNK_BYTES):
                pass
            return time.perf_counter() - started


class Run(NamedTuple):
    presigned_s: float
    aioboto3_s: float
    complete_s: float
    plain_get_s: float
    rss_growth_mb: float


async def _run(base: str, key: str, pid: int, data_dir: Path, path: Path, sha256: str) -> Run:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600) as client:
        before = psutil.Process(pid).memory_info().rss
        with PeakRss(pid) as rss:
            upload_id, presigned = await _upload(client, path, sha256)
            completed, object_key = await _complete(client, upload_id)
    growth = (rss.peak - before) / MIB
    direct = await _with_aioboto3(data_dir, path)
    return Run(presigned, direct, completed, await _plain_get(data_dir, object_key), growth)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=int, default=256, help="payload size in MiB")
    args = parser.parse_args()
    path, sha256 = _payload(args.mb)
    warm, _ = _payload(16)
    size = path.stat().st_size / 1e6
    temporary = [path.parent, warm.parent]  # with the service's data (every run's object): GBs to remove
    try:
        with running_service(engine__serve="false") as service:
            temporary.append(service.data_dir)
            run = (service.base, service.key, service.pid, service.data_dir)
            asyncio.run(_run(*run, warm, hashlib.sha256(warm.read_bytes()).hexdigest()))  # imports, pools, heap
            results = [asyncio.run(_run(*run, path, sha256)) for _ in range(args.runs)]
    finally:
        for directory in temporary:
            shutil.rmtree(directory, ignore_errors=True)
    median = {field: statistics.median(getattr(r, field) for r in results) for field in Run._fields}
    result = {
        "size_mb": round(size, 1),
        "presigned_mb_s": round(size / median["presigned_s"], 1),
        "aioboto3_mb_s": round(size / median["aioboto3_s"], 1),
        "upload_ratio": round(median["aioboto3_s"] / median["presigned_s"], 3),
        "complete_s": round(median["complete_s"], 2),
        "complete_mb_s": round(size / median["complete_s"], 1),
        "plain_get_mb_s": round(size / median["plain_get_s"], 1),
        "complete_vs_get": round(median["plain_get_s"] / median["complete_s"], 3),
        "rss_growth_mb": round(max(r.rss_growth_mb for r in results), 1),
        "runs": args.runs,
    }
    print("per run:", [{k: round(v, 2) for k, v in r._asdict().items()} for r in results])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
