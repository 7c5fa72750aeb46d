"""POST /files/analyze(/async) and GET /job/{job_id} on the real stack: the streaming upload, the engine's
`document_text` step on Ray, Postgres and S3."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.support import sample_files
from tests.support.api_calls import ANALYZE, analyze, job, listing, started, until_done
from tests.support.stored_objects import assert_nothing_stored

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


@contextlib.asynccontextmanager
async def pages_locked() -> AsyncIterator[None]:
    """Hold a SHARE lock on document_page: a text extraction stores its pages in the transaction that completes
    its job, so no `document_text` job can complete until the lock is released (reads go on)."""
    from store.database import engine

    connection = await engine().get_new_connection()
    try:
        await connection.execute("BEGIN; LOCK TABLE document_page IN SHARE MODE")
        yield
    finally:
        await connection.close()  # ends the transaction and its lock


async def test_analyze_returns_the_text_of_a_pdf_and_stores_the_file(client, alice, engine):
    content = sample_files.pdf("Safety manual: inspections are quarterly.", pages=2)
    folder = uuid.uuid4()
    response = await analyze(client, alice, content, "manual.pdf", timeout=60, folder_id=folder)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "document_id", "status", "filename", "size_bytes", "processing_time_ms", "document_type",
        "text_extraction_status", "page_count", "chunk_count", "extracted_text",
    }  # fmt: skip
    assert body["status"] == "completed" and body["text_extraction_status"] == "completed"
    assert body["filename"] == "manual.pdf" and body["size_bytes"] == len(content)
    assert body["document_type"] == "pdf" and body["page_count"] == 2 and body["chunk_count"] >= 1
    assert "inspections are quarterly. (page 1)" in body["extracted_text"]
    assert "(page 2)" in body["extracted_text"]
    assert body["processing_time_ms"] > 0
    listed = await listing(client, alice)
    assert [item["id"] for item in listed["items"]] == [body["document_id"]]
    detail = (await client.get(f"/api/v2/files/{body['document_id']}", headers=alice.headers)).json()
    assert detail["media_type"] == "document" and detail["folder_id"] == str(folder)


async def test_a_timeout_answers_processing_with_a_job_to_poll(client, alice, engine):
    async with pages_locked():
        clock = time.monotonic()
        response = await analyze(client, alice, sample_files.TEXT, "notes.txt", timeout=5)
        waited = time.monotonic() - clock
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "processing", body
        assert set(body) == {"document_id", "status", "job_id", "poll_url", "document_type", "text_extraction_status"}
        assert body["poll_url"] == f"/api/v2/job/{body['job_id']}"
        assert body["document_type"] == "txt" and body["text_extraction_status"] in ("queued", "processing")
        assert 5 <= waited < 15
        polled = await job(client, alice, body["poll_url"])
        assert polled["status"] == "processing" and polled["result"] is None
    final = await until_done(client, alice, body["poll_url"])
    assert final["status"] == "completed" and final["document_id"] == body["document_id"]
    assert final["result"]["status"] == "completed"
    assert final["result"]["document_id"] == body["document_id"]
    assert "north pillar shows surface cracks" in final["result"]["extracted_text"]


async def test_async_analyze_answers_202_and_its_job_ends_with_the_result(client, alice, engine):
    accepted = await started(client, alice, sample_files.docx_file("Quarterly inspection report"), "report.docx")
    final = await until_done(client, alice, accepted["poll_url"])
    assert set(final) == {
        "job_id", "status", "document_id", "step", "created_at", "updated_at", "retry_count", "error_message",
        "result",
    }  # fmt: skip
    assert final["job_id"] == accepted["job_id"] and final["status"] == "completed"
    assert final["step"] == "document_text" and final["retry_count"] == 0 and final["error_message"] is None
    assert final["updated_at"] >= final["created_at"]
    result = final["result"]
    assert result["status"] == "completed" and result["document_id"] == final["document_id"]
    assert result["filename"] == "report.docx" and result["document_type"] == "docx"
    assert "Quarterly inspection report" in result["extracted_text"]
    assert result["processing_time_ms"] > 0
    assert [item["id"] for item in (await listing(client, alice))["items"]] == [final["document_id"]]


async def test_a_corrupt_pdf_ends_failed_with_its_error(client, alice, engine):
    corrupt = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage"
    response = await analyze(client, alice, corrupt, "broken.pdf", timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "failed", body
    assert body["text_extraction_status"] == "failed" and "corrupt" in body["error_message"]
    final = await job(client, alice, f"/api/v2/job/{body['job_id']}")
    assert final["status"] == "failed" and final["result"] is None and final["retry_count"] == 0
    assert final["error_message"] == body["error_message"] and final["document_id"] == body["document_id"]


async def test_a_duplicate_is_skipped_with_the_existing_copy(client, alice):
    content = b"Duplicate notes " + uuid.uuid4().hex.encode() + b"\n"
    first = await job(client, alice, (await started(client, alice, content, "first.md"))["poll_url"])
    response = await analyze(client, alice, content, "second.md", skip_duplicates=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "skipped" and body["document_id"] == first["document_id"]
    assert body["filename"] == "first.md" and body["size_bytes"] == len(content)
    assert (await listing(client, alice))["total_count"] == 1


async def test_only_documents_are_analyzed(client, blobs, alice):
    response = await analyze(client, alice, sample_files.image("JPEG"), "photo.pdf")
    assert response.status_code == 415, response.text
    body = response.json()
    assert body["code"] == "unsupported_media_type"
    assert "PDF, DOCX, TXT, MD" in body["detail"] and "image/jpeg" in body["detail"]
    await assert_nothing_stored(client, blobs, alice)


@pytest.mark.parametrize("timeout", ["4", "121", "soon", "nan"])
async def test_a_timeout_outside_5_to_120_seconds_is_422(client, blobs, alice, timeout):
    response = await analyze(client, alice, sample_files.TEXT, "notes.txt", timeout=timeout)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "timeout"
    await assert_nothing_stored(client, blobs, alice)


async def _text_body(size: int) -> AsyncIterator[bytes]:
    """A multipart body streamed without Content-Length, holding a text file of `size` bytes."""
    yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
    block = b"inspection notes, north pillar\n" * 8192
    sent = 0
    while sent < size:
        part = block[: size - sent]
        sent += len(part)
        yield part
    yield b"\r\n--b--\r\n"


@pytest.mark.parametrize("declared", [False, True])
async def test_over_10_mb_is_413_and_nothing_is_stored(client, blobs, alice, declared):
    if declared:  # refused on its Content-Length, before reading
        response = await analyze(client, alice, b"notes\n" * (2 * MIB), "big.txt")
    else:  # refused at the byte past the limit
        headers = {**alice.headers, "Content-Type": "multipart/form-data; boundary=b"}
        response = await client.post(ANALYZE, headers=headers, content=_text_body(10 * MIB + 1))
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["code"] == "payload_too_large" and "10 MB" in body["detail"]
    assert body["suggestion"]["endpoint"] == "/api/v2/files/upload"
    await assert_nothing_stored(client, blobs, alice)


async def test_jobs_are_private_to_their_tenant(client, alice, bob):
    accepted = await started(client, alice, sample_files.MARKDOWN, "readme.md")
    assert (await client.get(accepted["poll_url"], headers=alice.headers)).status_code == 200
    for url in (accepted["poll_url"], f"/api/v2/job/{uuid.uuid4()}", "/api/v2/job/not-a-uuid"):
        response = await client.get(url, headers=bob.headers)
        assert response.status_code == 404, (url, response.text)
        assert response.json()["code"] == "not_found"
