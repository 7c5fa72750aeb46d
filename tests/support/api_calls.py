"""Small wrappers over the HTTP calls most tests make."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.support.callers import Caller

ANALYZE = "/api/v2/files/analyze"


def _form(fields: dict[str, Any]) -> dict[str, str]:
    """Form fields as a browser sends them (booleans as `true`/`false`)."""
    return {name: str(value).lower() if isinstance(value, bool) else str(value) for name, value in fields.items()}


async def upload(
    client: httpx.AsyncClient,
    caller: Caller,
    content: bytes,
    filename: str = "file.bin",
    content_type: str = "application/octet-stream",
    **fields: Any,
) -> httpx.Response:
    return await client.post(
        "/api/v2/files/upload",
        headers=caller.headers,
        files={"file": (filename, content, content_type)},
        data=_form(fields),
    )


async def uploaded(client: httpx.AsyncClient, caller: Caller, content: bytes, filename: str, **fields: Any) -> str:
    """Upload and return the new file id, failing loudly otherwise."""
    response = await upload(client, caller, content, filename, **fields)
    assert response.status_code == 201, response.text
    return response.json()["file_id"]


async def listing(client: httpx.AsyncClient, caller: Caller, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v2/files", headers=caller.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def status(client: httpx.AsyncClient, caller: Caller, file_id: str) -> dict:
    response = await client.get(f"/api/v2/files/uploads-status/{file_id}", headers=caller.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def until_terminal(client: httpx.AsyncClient, caller: Caller, file_id: str, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = await status(client, caller, file_id)
        if body["is_terminal"]:
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"not terminal after {seconds} s: {body}")


async def settled(client: httpx.AsyncClient, caller: Caller, file_ids: list[str], seconds: float = 180) -> None:
    """Wait until every file is processed to the end, and check that each `completed`."""
    finals = await asyncio.gather(*(until_terminal(client, caller, file_id, seconds) for file_id in file_ids))
    assert all(final["unified_status"] == "completed" for final in finals), finals


async def file_route(client: httpx.AsyncClient, caller: Caller, file_id: str, route: str, **params: Any) -> dict:
    """GET /files/{file_id}/{route}, checked: its 200 body."""
    response = await client.get(f"/api/v2/files/{file_id}/{route}", headers=caller.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def analyze(
    client: httpx.AsyncClient, caller: Caller, content: bytes, filename: str, path: str = ANALYZE, **fields: Any
) -> httpx.Response:
    return await client.post(
        path,
        headers=caller.headers,
        files={"file": (filename, content, "application/octet-stream")},
        data=_form(fields),
    )


async def started(client: httpx.AsyncClient, caller: Caller, content: bytes, filename: str) -> dict[str, Any]:
    """analyze/async, checked: its 202 body."""
    response = await analyze(client, caller, content, filename, f"{ANALYZE}/async")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body == {"job_id": body["job_id"], "status": "processing", "poll_url": f"/api/v2/job/{body['job_id']}"}
    return body


async def job(client: httpx.AsyncClient, caller: Caller, poll_url: str) -> dict[str, Any]:
    response = await client.get(poll_url, headers=caller.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def until_done(client: httpx.AsyncClient, caller: Caller, poll_url: str, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = await job(client, caller, poll_url)
        if body["status"] != "processing":
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"job still processing after {seconds} s: {body}")
