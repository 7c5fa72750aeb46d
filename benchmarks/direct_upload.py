"""The read-back of a direct upload's `complete` (the object streamed from S3 to verify its SHA-256 and inspect its
content) against a plain S3 GET of the same object, on a real `scopix serve`; plus the server's RSS growth during
`complete`. Each run uploads a fresh intent's parts (8 MiB, 4 in flight) straight to the presigned URLs with httpx,
confirms them, then times `complete`, then a plain aioboto3 GET of the stored object read to the end in the same
chunk size. The payload is an MP4 grown by a `free` atom of random bytes, so inspection walks a real format.

    .venv/bin/python benchmarks/direct_upload.py [--runs 3] [--mb 256]

The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

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


async def _upload(client: httpx.AsyncClient, path: Path, sha256: str) -> str:
    """An intent whose parts are sent and confirmed; its id."""
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

    async def send(part: dict) -> None:
        number = part["part_number"]
        with path.open("rb") as handle:
            handle.seek((number - 1) * PART_BYTES)
            data = handle.read(PART_BYTES)
        async with gate, httpx.AsyncClient(timeout=300) as s3:
            etag = (await s3.put(part["url"], content=data)).raise_for_status().headers["etag"]
        confirm = {"part_number": number, "etag": etag, "size_bytes": len(data)}
        route = f"/api/v2/files/direct-uploads/{created['upload_id']}/parts/confirm"
        (await client.post(route, json=confirm)).raise_for_status()

    await asyncio.gather(*(send(part) for part in created["part_urls"]))
    return str(created["upload_id"])


async def _complete(client: httpx.AsyncClient, upload_id: str) -> tuple[float, str]:
    started = time.perf_counter()
    response = await client.post(f"/api/v2/files/direct-uploads/{upload_id}/complete")
    elapsed = time.perf_counter() - started
    if response.status_code != 202:
        raise RuntimeError(f"complete failed: {response.status_code} {response.text[:2000]}")
    return elapsed, response.json()["object_key"]


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


async def _run(base: str, key: str, pid: int, data_dir: Path, path: Path, sha256: str) -> tuple[float, float, float]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600) as client:
        upload_id = await _upload(client, path, sha256)
        before = psutil.Process(pid).memory_info().rss
        with PeakRss(pid) as rss:
            completed, object_key = await _complete(client, upload_id)
    growth = (rss.peak - before) / MIB
    return completed, await _plain_get(data_dir, object_key), growth


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=int, default=256, help="payload size in MiB")
    args = parser.parse_args()
    path, sha256 = _payload(args.mb)
    warm, _ = _payload(16)
    with running_service(engine__serve="false") as service:
        run = (service.base, service.key, service.pid, service.data_dir)
        asyncio.run(_run(*run, warm, hashlib.sha256(warm.read_bytes()).hexdigest()))  # imports, pools, heap
        results = [asyncio.run(_run(*run, path, sha256)) for _ in range(args.runs)]
    size = path.stat().st_size / 1e6
    complete_s = statistics.median(r[0] for r in results)
    get_s = statistics.median(r[1] for r in results)
    growth = max(r[2] for r in results)
    result = {
        "size_mb": round(size, 1),
        "complete_s": round(complete_s, 2),
        "complete_mb_s": round(size / complete_s, 1),
        "plain_get_mb_s": round(size / get_s, 1),
        "ratio": round(get_s / complete_s, 3),
        "rss_growth_mb": round(growth, 1),
        "runs": args.runs,
    }
    print("per run (complete s, plain GET s, RSS growth MB):", [tuple(round(x, 2) for x in r) for r in results])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
