"""A client of the direct-upload flow, as an SDK would drive it: the intent from the API, the bytes straight to the
presigned URLs with httpx, then the parts confirmed and the upload completed."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx

from tests.support.callers import Caller

ROUTE = "/api/v2/files/direct-uploads"


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


async def intent(client: httpx.AsyncClient, caller: Caller, content: bytes, filename: str, **fields: Any) -> dict:
    """A new intent for `content` (its true hash and size unless `fields` say otherwise)."""
    body = {
        "filename": filename,
        "content_type": "application/octet-stream",
        "size_bytes": len(content),
        "claimed_file_hash": sha256(content),
        **fields,
    }
    response = await client.post(ROUTE, headers=caller.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def put_single(created: dict, content: bytes) -> httpx.Response:
    async with httpx.AsyncClient(timeout=120) as s3:
        return await s3.put(created["presigned_url"], content=content, headers=created["headers"])


async def put_part(created: dict, content: bytes, number: int) -> httpx.Response:
    """Send part `number` of `content` (cut at the intent's part size) to its presigned URL."""
    size = created["part_size_bytes"]
    async with httpx.AsyncClient(timeout=120) as s3:
        url = created["part_urls"][number - 1]["url"]
        response = await s3.put(url, content=content[(number - 1) * size : number * size])
    assert response.status_code == 200, response.text
    return response


async def confirm(client: httpx.AsyncClient, caller: Caller, upload_id: str, number: int, etag: str, size: int):
    body = {"part_number": number, "etag": etag, "size_bytes": size}
    return await client.post(f"{ROUTE}/{upload_id}/parts/confirm", headers=caller.headers, json=body)


async def send_parts(
    client: httpx.AsyncClient, caller: Caller, created: dict, content: bytes, numbers=None, in_flight: int = 8
) -> None:
    """Send the parts in parallel (`in_flight` at a time), then confirm each with the ETag S3 answered."""
    numbers = numbers or range(1, created["total_parts"] + 1)
    slots = asyncio.Semaphore(in_flight)

    async def send(number: int) -> httpx.Response:
        async with slots:
            return await put_part(created, content, number)

    sent = await asyncio.gather(*(send(number) for number in numbers))
    size = created["part_size_bytes"]
    for number, response in zip(numbers, sent, strict=True):
        part = content[(number - 1) * size : number * size]
        confirmed = await confirm(client, caller, created["upload_id"], number, response.headers["etag"], len(part))
        assert confirmed.status_code == 200, confirmed.text


async def complete(client: httpx.AsyncClient, caller: Caller, upload_id: str) -> httpx.Response:
    return await client.post(f"{ROUTE}/{upload_id}/complete", headers=caller.headers)


async def state(client: httpx.AsyncClient, caller: Caller, upload_id: str) -> dict:
    response = await client.get(f"{ROUTE}/{upload_id}", headers=caller.headers)
    assert response.status_code == 200, response.text
    return response.json()
