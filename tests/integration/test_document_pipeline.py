"""Documents through the real engine: extraction, digitization and chunks on Ray, embeddings on the MiniLM
model actor, failures that end honestly, and a job whose inference is unavailable never completing."""

from __future__ import annotations

import uuid
from dataclasses import replace

import httpx
import numpy as np
import pymupdf
import pytest

from cluster.model_clients import EmbedderClient
from models.registry import resolve
from pipelines.document.plan import embed_chunks_step
from store import documents, embeddings
from tests.support import sample_files
from tests.support.api_calls import until_terminal, uploaded
from tests.support.callers import Caller
from tests.support.lone_engine import run_alone
from tests.support.sample_documents import make_docx, manual_pdf

pytestmark = pytest.mark.integration


async def processed(client: httpx.AsyncClient, caller: Caller, content: bytes, filename: str) -> dict:
    file_id = await uploaded(client, caller, content, filename)
    final = await until_terminal(client, caller, file_id, seconds=120)
    assert final["unified_status"] == "completed", final
    response = await client.get(f"/api/v2/files/{file_id}", headers=caller.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_pdf_becomes_text_pages_and_embedded_chunks(client, alice, engine) -> None:
    body = await processed(client, alice, manual_pdf(), "manual.pdf")
    file_id = uuid.UUID(body["id"])
    row = (await client.get(f"/api/v2/files/{file_id}/processing-status", headers=alice.headers)).json()

    assert row["text_extraction_status"] == "completed"
    assert row["component_statuses"]["digitization_status"] == "completed"
    assert row["component_statuses"]["embedding_status"] == "completed"
    assert row["component_statuses"]["ocr_status"] == "completed"  # its third page is scanned
    assert row["primary_status"] == "completed"
    assert row["page_count"] == len(await documents.pages_of(file_id)) >= 2
    chunks = await documents.chunks_of(file_id)
    assert row["chunk_count"] == len(chunks) > 0
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    assert all(c.embedding_status == "completed" and 0 < c.token_count <= 256 for c in chunks)
    vectors = await embeddings.vectors_of(file_id, resolve("embed_text").model_id)
    assert set(vectors) == {c.id for c in chunks}
    assert all(len(v) == 384 and abs(np.linalg.norm(v) - 1) < 1e-3 for v in vectors.values())


@pytest.mark.parametrize(
    ("content", "filename", "expected"),
    [
        (make_docx(), "report.docx", "docx"),
        (sample_files.TEXT, "notes.txt", "txt"),
        (sample_files.MARKDOWN, "notes.md", "md"),
    ],
)
async def test_docx_txt_and_md_are_processed(client, alice, engine, content, filename, expected) -> None:
    body = await processed(client, alice, content, filename)
    file_id = uuid.UUID(body["id"])
    chunks = await documents.chunks_of(file_id)

    assert body["document_type"] == expected
    assert chunks and all(c.embedding_status == "completed" for c in chunks)
    listed = await client.get(
        "/api/v2/files", headers=alice.headers, params={"search": chunks[0].content.split()[-1].strip(".:")}
    )
    assert str(file_id) in [item["id"] for item in listed.json()["items"]]


def encrypted_pdf() -> bytes:
    document = pymupdf.open(stream=manual_pdf(), filetype="pdf")
    return document.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner")


@pytest.mark.parametrize(
    ("content", "message"),
    [(manual_pdf()[:1500], "corrupt"), (encrypted_pdf(), "password-protected")],
    ids=["corrupt", "encrypted"],
)
async def test_unreadable_pdfs_end_failed_with_a_clear_error(client, alice, engine, content, message) -> None:
    file_id = await uploaded(client, alice, content, "broken.pdf")
    final = await until_terminal(client, alice, file_id, seconds=60)

    assert final["unified_status"] == "failed"
    statuses = final["component_statuses"]
    assert statuses["text_extraction_status"] == statuses["digitization_status"] == "failed"
    assert statuses["embedding_status"] == statuses["ocr_status"] == "skipped"
    assert message in final["error_message"]
    assert await documents.chunks_of(uuid.UUID(file_id)) == []


async def test_a_job_whose_inference_is_unavailable_never_completes(client, alice, engine, services) -> None:
    """An engine whose embedder names a model that is not on this machine: the job retries and then fails,
    no chunk is marked embedded, and the document cannot be deleted while the embedding is under way."""
    body = await processed(client, alice, sample_files.TEXT, "notes.txt")
    file_id = uuid.UUID(body["id"])
    chunk_ids = [c.id for c in await documents.chunks_of(file_id)]
    await documents.set_embedding_status(file_id, "pending", only_pending=False)  # as before a re-embedding
    missing = EmbedderClient("/nonexistent/embedding-model")
    step = replace(embed_chunks_step(missing), name="embed_chunks_unavailable")
    job = await run_alone(engine, step, file_id, alice, client)

    assert job["status"] == "failed" and job["attempts"] == 3
    assert "/nonexistent/embedding-model" in job["error"]
    failed = [c for c in await documents.chunks_of(file_id) if c.id in chunk_ids]
    assert {c.embedding_status for c in failed} == {"failed"}
    assert await embeddings.vectors_of(file_id, "/nonexistent/embedding-model") == {}
    deleted = await client.delete(f"/api/v2/files/{file_id}", headers=alice.headers)
    assert deleted.status_code == 200, deleted.text
