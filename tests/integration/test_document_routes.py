"""The document routes on documents processed by the real engine (text, chunks with MiniLM vectors,
digitization), their errors, and the states before and after processing, seeded through store."""

from __future__ import annotations

import uuid

import httpx
import numpy as np
import pytest

from models.registry import resolve
from store import documents, embeddings, files
from tests.support import sample_files
from tests.support.api_calls import file_route, settled, until_terminal, uploaded
from tests.support.callers import Caller, new_caller
from tests.support.sample_documents import SENTENCE, make_docx, manual_pdf

pytestmark = pytest.mark.integration

ROUTES = ("text", "chunks", "digitization", "digitization/pages/1", "digitization/status")
DOCUMENTS = {
    "manual.pdf": manual_pdf(),
    "report.docx": make_docx(),
    "notes.txt": sample_files.TEXT,
    "notes.md": sample_files.MARKDOWN,
}


@pytest.fixture(scope="module")
async def owner(database: None) -> Caller:
    return await new_caller()


@pytest.fixture(scope="module")
async def processed(http: httpx.AsyncClient, owner: Caller, engine: object) -> dict[str, str]:
    """Each of DOCUMENTS uploaded once and processed to the end (text, pages, chunks and their vectors)."""
    ids = {name: await uploaded(http, owner, content, name) for name, content in DOCUMENTS.items()}
    await settled(http, owner, list(ids.values()))
    return ids


# --- PDF ---------------------------------------------------------------------------------------------------


async def test_pdf_text(http, owner, processed) -> None:
    body = await file_route(http, owner, processed["manual.pdf"], "text")

    assert body["document_id"] == processed["manual.pdf"] and body["filename"] == "manual.pdf"
    assert body["page_count"] == 3 and body["metadata"] == {"language": "en"}
    assert body["text"].startswith("Safety Manual\n")
    assert "Fire | Quarterly | Safety team" in body["text"]
    assert body["text"].index("Site: North Yard") < body["text"].index("Chapter 2: Schedules")


async def test_pdf_chunks_follow_the_headings(http, owner, processed) -> None:
    file_id = processed["manual.pdf"]
    body = await file_route(http, owner, file_id, "chunks")
    chunks = body["chunks"]
    detail = await file_route(http, owner, file_id, "processing-status")

    assert body["document_id"] == file_id and "status_counts" not in body
    assert body["total_chunks"] == len(chunks) == detail["chunk_count"]
    assert [(c["heading_hierarchy"], c["page_numbers"]) for c in chunks] == [
        (["Safety Manual"], [1]),
        (["Safety Manual", "Chapter 1: Inspections"], [1]),
        (["Safety Manual", "Chapter 1: Inspections", "1.1 Checklist"], [1]),
        (["Safety Manual", "Chapter 2: Schedules"], [2]),
    ]
    assert [c["chunk_index"] for c in chunks] == list(range(len(chunks)))
    assert chunks[0]["content"].startswith(SENTENCE.strip())
    assert chunks[3]["content"].startswith("| Category | Frequency | Owner |")
    assert len({uuid.UUID(c["chunk_id"]) for c in chunks}) == len(chunks)
    for c in chunks:
        assert c["document_id"] == file_id and c["document_filename"] == "manual.pdf"
        assert c["similarity_score"] is None and "embedding" not in c
        assert 0 < c["metadata"]["token_count"] <= 256
        assert c["metadata"]["embedding_status"] == "completed"
    assert [c["metadata"]["chunk_type"] for c in chunks] == ["paragraph", "paragraph", "mixed", "mixed"]


async def test_pdf_chunks_with_their_embeddings(http, owner, processed) -> None:
    """Each chunk carries its own vector in the active model's (MiniLM's) space."""
    file_id = processed["manual.pdf"]
    body = await file_route(http, owner, file_id, "chunks", include_embeddings="true")
    chunks = body["chunks"]
    stored = await embeddings.vectors_of(uuid.UUID(file_id), resolve("embed_text").model_id)
    vectors = np.array([c["embedding"] for c in chunks], np.float32)

    assert body["status_counts"] == {"completed": len(chunks), "pending": 0, "failed": 0}
    assert vectors.shape == (len(chunks), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
    assert np.array_equal(vectors, np.array([stored[uuid.UUID(c["chunk_id"])] for c in chunks], np.float32))
    assert len({tuple(vector) for vector in vectors}) == len(chunks)


async def test_pdf_digitization(http, owner, processed) -> None:
    body = await file_route(http, owner, processed["manual.pdf"], "digitization")
    first, second, scanned = body["pages"]

    assert body["document_id"] == processed["manual.pdf"] and body["status"] == "completed"
    assert (body["total_pages"], body["completed_pages"], body["failed_pages"]) == (3, 3, 0)
    assert [page["page_number"] for page in body["pages"]] == [1, 2, 3]
    assert [(e["type"], e.get("metadata", {}).get("level")) for e in first["elements"][:6]] == [
        ("heading", 1),
        ("paragraph", None),
        ("heading", 2),
        ("paragraph", None),
        ("heading", 3),
        ("list", None),
    ]
    assert first["elements"][5]["content"].splitlines()[0] == "Check the fire extinguishers"
    key_values = [e for e in first["elements"] if e["type"] == "key_value"]
    assert key_values[0]["content"] == "Inspector: Jane Doe"
    assert key_values[1]["metadata"] == {"key": "Date", "value": "2026-01-15"}
    assert "metadata" not in first["elements"][1]  # a paragraph has none, as in the spec
    assert [e["type"] for e in second["elements"]] == ["heading", "table", "paragraph", "figure"]
    assert second["elements"][1]["content"].startswith("| Category | Frequency | Owner |\n|---|---|---|\n")
    assert second["elements"][3]["content"] == "Figure 1: Site map"
    assert scanned == {  # a scanned page of a plain gray image: OCR read it and found no text
        "page_number": 3,
        "status": "completed",
        "element_count": 0,
        "elements": [],
        "error_message": None,
    }
    for page in (first, second):
        assert page["status"] == "completed" and page["error_message"] is None
        assert page["element_count"] == len(page["elements"])
        for element in page["elements"]:
            box = element["bounding_box"]
            assert box["x"] >= 0 and box["y"] >= 0 and box["w"] > 0 and box["h"] > 0
            assert box["x"] + box["w"] <= 1 and box["y"] + box["h"] <= 1


async def test_pdf_page_and_status_routes(http, owner, processed) -> None:
    file_id = processed["manual.pdf"]
    whole = await file_route(http, owner, file_id, "digitization")

    for number in (1, 2, 3):
        assert await file_route(http, owner, file_id, f"digitization/pages/{number}") == whole["pages"][number - 1]
    beyond = await http.get(f"/api/v2/files/{file_id}/digitization/pages/4", headers=owner.headers)
    assert beyond.status_code == 404 and beyond.json()["code"] == "page_not_found"
    for number in ("abc", "1.5"):  # not a page number: no such page
        odd = await http.get(f"/api/v2/files/{file_id}/digitization/pages/{number}", headers=owner.headers)
        assert odd.status_code == 404, odd.text
    for number in ("0", "-1"):
        invalid = await http.get(f"/api/v2/files/{file_id}/digitization/pages/{number}", headers=owner.headers)
        assert invalid.status_code == 422, invalid.text
    assert await file_route(http, owner, file_id, "digitization/status") == {
        "document_id": file_id,
        "status": "completed",
        "total_pages": 3,
        "page_statuses": {"1": "completed", "2": "completed", "3": "completed"},
    }


# --- DOCX, TXT, MD -----------------------------------------------------------------------------------------


async def test_docx_text_chunks_and_digitization(http, owner, processed) -> None:
    file_id = processed["report.docx"]
    text = await file_route(http, owner, file_id, "text")
    chunks = (await file_route(http, owner, file_id, "chunks"))["chunks"]
    pages = (await file_route(http, owner, file_id, "digitization"))["pages"]

    assert text["text"].startswith("Site Report\nSafety inspections") and text["page_count"] == 2
    assert chunks[0]["heading_hierarchy"] == ["Site Report"]
    assert chunks[-1]["heading_hierarchy"] == ["Site Report", "Findings"]
    assert chunks[-1]["page_numbers"] == [1, 2]  # the findings continue after the page break
    assert [(e["type"], e.get("metadata")) for e in pages[0]["elements"] if e["type"] == "heading"] == [
        ("heading", {"level": 1}),
        ("heading", {"level": 2}),
    ]
    assert {e["type"] for e in pages[0]["elements"]} == {"heading", "paragraph", "list", "key_value", "table"}
    assert all(e["bounding_box"] is None for page in pages for e in page["elements"])  # no geometry in DOCX


async def test_txt_and_md_text_and_chunks(http, owner, processed) -> None:
    txt = await file_route(http, owner, processed["notes.txt"], "text")
    md_chunks = (await file_route(http, owner, processed["notes.md"], "chunks"))["chunks"]
    txt_chunks = (await file_route(http, owner, processed["notes.txt"], "chunks", include_embeddings="true"))["chunks"]

    assert txt["text"] == sample_files.TEXT.decode().strip() and txt["page_count"] == 1
    assert txt_chunks and all(len(c["embedding"]) == 384 for c in txt_chunks)
    assert "The north pillar shows surface cracks." in txt_chunks[-1]["content"]
    assert md_chunks[0]["heading_hierarchy"] == ["Inspection"]
    assert "north pillar: cracks" in md_chunks[0]["content"]
    md_status = await file_route(http, owner, processed["notes.md"], "digitization/status")
    assert md_status["page_statuses"] == {"1": "completed"}


# --- errors ------------------------------------------------------------------------------------------------


async def test_other_media_and_other_tenants(http, owner, processed, bob) -> None:
    image = await uploaded(http, owner, sample_files.image(), "photo.jpg")
    for route in ROUTES:
        on_image = await http.get(f"/api/v2/files/{image}/{route}", headers=owner.headers)
        assert on_image.status_code == 400 and on_image.json()["code"] == "wrong_media_type", route
        for file_id in (processed["manual.pdf"], processed["manual.pdf"][:8], str(uuid.uuid4())):
            hidden = await http.get(f"/api/v2/files/{file_id}/{route}", headers=bob.headers)
            assert hidden.status_code == 404, (route, file_id, hidden.text)


# --- states before and after processing, seeded ------------------------------------------------------------


@pytest.fixture
async def seeded(http: httpx.AsyncClient, owner: Caller, processed: dict[str, str]) -> uuid.UUID:
    """A processed document of its own (so the engine is done with it), to be set to any state."""
    file_id = uuid.UUID(await uploaded(http, owner, sample_files.TEXT + uuid.uuid4().hex.encode(), "seeded.txt"))
    await until_terminal(http, owner, str(file_id), seconds=120)
    return file_id


@pytest.mark.parametrize("status", ["pending", "queued", "processing"])
async def test_text_is_not_served_before_extraction(http, owner, seeded, status) -> None:
    await files.set_columns(seeded, {"text_extraction_status": status, "digitization_status": status})
    await documents.replace(seeded, owner.tenant_id, [], [])
    response = await http.get(f"/api/v2/files/{seeded}/text", headers=owner.headers)

    assert response.status_code == 409
    assert response.json()["code"] == "text_not_ready" and response.json()["text_extraction_status"] == status
    assert await file_route(http, owner, str(seeded), "chunks") == {
        "document_id": str(seeded),
        "chunks": [],
        "total_chunks": 0,
        "limit": 100,
        "offset": 0,
        "has_more": False,
    }
    embedded = await file_route(http, owner, str(seeded), "chunks", include_embeddings="true")
    assert embedded["status_counts"] == {"completed": 0, "pending": 0, "failed": 0}
    digitization = await file_route(http, owner, str(seeded), "digitization")
    assert digitization["status"] == ("processing" if status == "processing" else "pending")
    assert digitization["pages"] == [] and digitization["completed_pages"] == 0


async def test_failed_extraction_is_a_conflict_with_its_reason(http, owner, seeded) -> None:
    await files.set_columns(seeded, {"text_extraction_status": "failed", "error_message": "The PDF is corrupt"})
    response = await http.get(f"/api/v2/files/{seeded}/text", headers=owner.headers)

    assert response.status_code == 409
    assert response.json()["code"] == "text_extraction_failed" and "The PDF is corrupt" in response.json()["detail"]


async def test_chunks_not_yet_embedded_have_a_null_embedding(http, owner, seeded) -> None:
    """Chunks and pages of a new extraction, the second page still unread: no vectors, pending pages."""
    page = {
        "page_number": 1,
        "status": "completed",
        "elements": [{"type": "paragraph", "content": "A", "bounding_box": None}],
    }
    chunk = {"chunk_type": "paragraph", "heading_hierarchy": [], "page_numbers": [1], "token_count": 3}
    chunks = [{**chunk, "chunk_index": index, "content": f"chunk {index}"} for index in range(2)]
    await documents.replace(seeded, owner.tenant_id, [page], chunks)
    await files.set_columns(seeded, {"digitization_status": "processing", "page_count": 2})
    body = await file_route(http, owner, str(seeded), "chunks", include_embeddings="true")

    assert [(c["content"], c["embedding"], c["metadata"]["embedding_status"]) for c in body["chunks"]] == [
        ("chunk 0", None, "pending"),
        ("chunk 1", None, "pending"),
    ]
    assert body["status_counts"] == {"completed": 0, "pending": 2, "failed": 0}
    status = await file_route(http, owner, str(seeded), "digitization/status")
    assert status == {
        "document_id": str(seeded),
        "status": "processing",
        "total_pages": 2,
        "page_statuses": {"1": "completed", "2": "pending"},
    }
    missing = await http.get(f"/api/v2/files/{seeded}/digitization/pages/2", headers=owner.headers)
    assert missing.status_code == 404


async def test_chunks_and_digitized_pages_are_paged(http, owner, seeded) -> None:
    """A large document, seeded: 250 chunks (the first 120 embedded in the active model's space) and 45 pages
    (every fifth failed). Each route answers one page of them, counted among all; a limit past its maximum, or
    an offset past its bound, is the client's 422."""
    page = {"status": "completed", "elements": [{"type": "paragraph", "content": "A", "bounding_box": None}]}
    pages = [{**page, "page_number": n, **({"status": "failed"} if n % 5 == 0 else {})} for n in range(1, 46)]
    chunk = {"chunk_type": "paragraph", "heading_hierarchy": [], "page_numbers": [1], "token_count": 3}
    chunks = [{**chunk, "chunk_index": index, "content": f"chunk {index}"} for index in range(250)]
    await documents.replace(seeded, owner.tenant_id, pages, chunks)
    await files.set_columns(seeded, {"digitization_status": "completed", "page_count": 45})
    model = resolve("embed_text").model_id
    ids = [row.id for row in await documents.chunks_of(seeded)]
    vectors = np.eye(384, dtype=np.float32)[:120]
    await embeddings.ensure_space(model, 384)
    await embeddings.save(model, owner.tenant_id, seeded, ids[:120], vectors)

    first = await file_route(http, owner, str(seeded), "chunks")
    assert [c["chunk_index"] for c in first["chunks"]] == list(range(100))
    assert (first["total_chunks"], first["limit"], first["offset"], first["has_more"]) == (250, 100, 0, True)
    embedded = await file_route(http, owner, str(seeded), "chunks", include_embeddings="true", offset=100, limit=50)
    assert [c["chunk_index"] for c in embedded["chunks"]] == list(range(100, 150))
    assert [c["embedding"] is not None for c in embedded["chunks"]] == [True] * 20 + [False] * 30
    assert embedded["chunks"][0]["embedding"] == vectors[100].tolist()
    assert embedded["status_counts"] == {"completed": 120, "pending": 130, "failed": 0}
    last = await file_route(http, owner, str(seeded), "chunks", offset=200, limit=500)
    assert len(last["chunks"]) == 50 and last["has_more"] is False and last["total_chunks"] == 250

    digitized = await file_route(http, owner, str(seeded), "digitization")
    assert [p["page_number"] for p in digitized["pages"]] == list(range(1, 21))
    assert (digitized["total_pages"], digitized["completed_pages"], digitized["failed_pages"]) == (45, 36, 9)
    assert (digitized["limit"], digitized["offset"], digitized["has_more"]) == (20, 0, True)
    rest = await file_route(http, owner, str(seeded), "digitization", offset=40, limit=100)
    assert [p["page_number"] for p in rest["pages"]] == list(range(41, 46)) and rest["has_more"] is False
    assert rest["pages"][-1]["status"] == "failed"

    for route, limit in (("chunks", 501), ("digitization", 101)):
        for params in ({"limit": limit}, {"limit": 0}, {"offset": 2**63}, {"offset": -1}):
            refused = await http.get(f"/api/v2/files/{seeded}/{route}", headers=owner.headers, params=params)
            assert refused.status_code == 422, (route, params, refused.text)
