"""A request body that stops arriving (slowloris) ends with a 408 once it has sent nothing for the configured
time, and the upload it had begun leaves nothing behind: no file, no object, no open multipart upload."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.callers import Caller
from tests.support.served import served
from tests.support.stored_objects import assert_nothing_stored, pending_multipart

pytestmark = pytest.mark.integration

IDLE_SECONDS = 3.0
MIB = 1024 * 1024
BOUNDARY = "stalled-body"


@pytest.fixture(scope="module")
async def stall_server(services, database) -> AsyncIterator[str]:
    # Parts of 5 MiB (S3's least), so the bytes sent before the stall open a multipart upload.
    settings = services.replace(api__body_idle_seconds=IDLE_SECONDS, storage__upload_part_bytes=5 * MIB)
    async with served(settings) as url:
        yield url


async def _stalled(
    base: str, caller: Caller, route: str, part: str, sent: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Send the request's head and `sent` bytes of a text file part out of a longer declared body, then nothing."""
    url = httpx.URL(base)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    opening = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{part}"; filename="notes.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    head = (
        f"POST {route} HTTP/1.1\r\nHost: {url.host}\r\nAuthorization: {caller.headers['Authorization']}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {20 * MIB}\r\n\r\n"
    ).encode()
    writer.write(head + opening + sent)
    await writer.drain()
    return reader, writer  # the writer is kept: closing it would be a disconnect, not a stall


@pytest.mark.parametrize(("route", "part"), [("/api/v2/files/upload", "file"), ("/api/v2/files/upload/batch", "files")])
async def test_a_stalled_upload_ends_with_408_and_leaves_nothing(stall_server, blobs, alice, route, part):
    started = time.monotonic()
    reader, writer = await _stalled(stall_server, alice, route, part, b"a line of plain text\n" * (6 * MIB // 21))
    deadline = started + IDLE_SECONDS - 0.5
    while not await pending_multipart(blobs, alice) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert len(await pending_multipart(blobs, alice)) == 1  # the upload had begun in S3

    status_line = await asyncio.wait_for(reader.readline(), timeout=IDLE_SECONDS + 15)
    assert status_line.split()[1] == b"408", status_line
    assert time.monotonic() - started >= IDLE_SECONDS
    rest = await asyncio.wait_for(reader.read(), timeout=10)  # the server closes the connection
    writer.close()
    assert b'"code":"request_timeout"' in rest
    async with httpx.AsyncClient(base_url=stall_server) as client:
        await assert_nothing_stored(client, blobs, alice)
