"""Scanned PDF pages (an image of text, no text layer) through the real engine: rendered, read by the real
rapidocr actor, digitized, chunked and embedded by MiniLM, so that the routes show their text and search finds
it; a mixed PDF keeps its page order; an OCR that cannot run fails its pages and never leaves a job stuck."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import httpx
import pytest

from cluster.model_clients import OcrClient
from pipelines.document.plan import DOCUMENT_TEXT, document_ocr_step, document_options
from pipelines.document.text import OCR_STEP, extract_document
from pipelines.engine.step import FileRef
from store import documents, files, jobs
from store.step_objects import put
from tests.support.api_calls import analyze, file_route, settled, started, until_done, until_terminal, uploaded
from tests.support.callers import Caller, new_caller
from tests.support.file_rows import insert_file
from tests.support.lone_engine import run_alone
from tests.support.sample_documents import SCANNED_LINES, scanned_pdf

pytestmark = pytest.mark.integration

WORDS = ("Quarterly boiler inspection report", "pressure valve was replaced", "Marta Kowalski")


@pytest.fixture(scope="module")
async def owner(database: None) -> Caller:
    return await new_caller()


@pytest.fixture(scope="module")
async def processed(http: httpx.AsyncClient, owner: Caller, engine: object) -> dict[str, str]:
    """A scanned PDF and a mixed one (a text page, then a scanned page), each processed to the end."""
    ids = {
        "scan.pdf": await uploaded(http, owner, scanned_pdf(), "scan.pdf"),
        "mixed.pdf": await uploaded(http, owner, scanned_pdf(with_text_page=True), "mixed.pdf"),
    }
    await settled(http, owner, list(ids.values()))
    return ids


def assert_in_page(box: dict[str, float]) -> None:
    assert box["x"] >= 0 and box["y"] >= 0 and box["w"] > 0 and box["h"] > 0
    assert box["x"] + box["w"] <= 1 and box["y"] + box["h"] <= 1


async def test_a_scanned_page_is_read_into_text_chunks_and_elements(http, owner, processed) -> None:
    file_id = processed["scan.pdf"]
    text = (await file_route(http, owner, file_id, "text"))["text"]
    chunks = (await file_route(http, owner, file_id, "chunks"))["chunks"]
    digitization = await file_route(http, owner, file_id, "digitization")
    status = await file_route(http, owner, file_id, "processing-status")

    assert all(words in text for words in WORDS), text
    assert chunks and all(c["metadata"]["embedding_status"] == "completed" for c in chunks)
    assert all(any(words in c["content"] for c in chunks) for words in WORDS)
    assert chunks[0]["page_numbers"] == [1]
    assert (digitization["status"], digitization["total_pages"], digitization["completed_pages"]) == ("completed", 1, 1)
    [page] = digitization["pages"]
    assert page["status"] == "completed" and page["error_message"] is None
    assert page["element_count"] == len(page["elements"]) == len(SCANNED_LINES)
    assert [e["type"] for e in page["elements"]] == ["paragraph", "paragraph", "key_value"]
    assert page["elements"][0]["content"] == SCANNED_LINES[0]
    assert page["elements"][2]["metadata"] == {"key": "Inspector", "value": "Marta Kowalski"}
    for element in page["elements"]:
        assert_in_page(element["bounding_box"])
    tops = [e["bounding_box"]["y"] for e in page["elements"]]
    assert tops == sorted(tops) and 0.08 < tops[0] < 0.15  # drawn at 200 of 1754 pixels
    assert await file_route(http, owner, file_id, "digitization/status") == {
        "document_id": file_id,
        "status": "completed",
        "total_pages": 1,
        "page_statuses": {"1": "completed"},
    }
    assert status["text_extraction_status"] == "completed" and status["chunk_count"] == len(chunks)
    assert status["component_statuses"]["embedding_status"] == status["component_statuses"]["ocr_status"] == "completed"


async def test_the_pages_are_parsed_and_rendered_in_ray_tasks_not_in_the_engine(owner, processed) -> None:
    job = await jobs.latest_job(uuid.UUID(processed["scan.pdf"]), OCR_STEP)

    assert job is not None and job.status == "completed"
    assert len(job.task_ids) == 3  # parse, render the one scanned page, make the pages and chunks


async def test_search_finds_the_scanned_text(http, owner, processed) -> None:
    response = await http.post(
        "/api/v2/files/search", headers=owner.headers, json={"query": "who replaced the boiler pressure valve"}
    )

    assert response.status_code == 200, response.text
    hits = response.json()["items"]
    assert hits and hits[0]["document_id"] in (processed["scan.pdf"], processed["mixed.pdf"])
    assert "pressure valve was replaced" in hits[0]["content"]


async def test_a_mixed_pdf_keeps_its_page_order(http, owner, processed) -> None:
    file_id = processed["mixed.pdf"]
    text = (await file_route(http, owner, file_id, "text"))["text"]
    pages = (await file_route(http, owner, file_id, "digitization"))["pages"]
    chunks = (await file_route(http, owner, file_id, "chunks"))["chunks"]

    assert text.startswith("Plant Overview\n")
    assert text.index("within two weeks.") < text.index(f"\n\n{SCANNED_LINES[0]}")
    assert [(page["page_number"], page["status"]) for page in pages] == [(1, "completed"), (2, "completed")]
    assert [e["type"] for e in pages[0]["elements"]] == ["heading", "paragraph"]
    assert [e["content"] for e in pages[1]["elements"]][:2] == list(SCANNED_LINES[:2])
    assert chunks[0]["heading_hierarchy"] == ["Plant Overview"] and chunks[-1]["page_numbers"][-1] == 2
    joined = "\n\n".join(c["content"] for c in chunks)
    assert joined.index("within two weeks.") < joined.index(SCANNED_LINES[1])


async def test_an_ocr_that_cannot_run_fails_the_scanned_pages_only(http, owner, engine, services) -> None:
    """The state document_text leaves (page 2 `needs_ocr`), then an OCR whose model is not on this machine: the
    job retries and fails, DELETE is refused meanwhile, the scanned page fails with the reason, and the text
    page's chunks are still embedded."""
    location, options = engine.location, document_options(services)
    file_id = await insert_file(owner.tenant_id, "unreadable.pdf", content_type="application/pdf", document_type="pdf")
    row = await files.get_file(owner.tenant_id, str(file_id))
    file = FileRef(file_id, owner.tenant_id, row.object_key, "document", row.content_type, "pdf")
    await asyncio.to_thread(put, location, file.object_key, scanned_pdf(with_text_page=True), "application/pdf")
    extracted = await asyncio.to_thread(extract_document, location, file, options)
    await documents.replace(file_id, owner.tenant_id, extracted["pages"], extracted["chunks"])
    await files.set_columns(file_id, DOCUMENT_TEXT.file_changes(extracted))
    assert (await documents.page_statuses(file_id)) == {1: "completed", 2: "needs_ocr"}

    step = replace(document_ocr_step(options, OcrClient("/nonexistent/ocr")), name="document_ocr_unavailable")
    job = await run_alone(engine, step, file_id, owner, http)
    final = await until_terminal(http, owner, str(file_id), seconds=120)

    assert job["status"] == "failed" and job["attempts"] == 3 and "/nonexistent/ocr" in job["error"]
    statuses = final["component_statuses"]
    assert (statuses["text_extraction_status"], statuses["digitization_status"]) == ("completed", "completed")
    assert statuses["embedding_status"] == "completed" and statuses["ocr_status"] == "failed"
    assert final["unified_status"] == "partially_completed"
    assert "/nonexistent/ocr" in final["error_message"]
    pages = (await file_route(http, owner, str(file_id), "digitization"))["pages"]
    assert [page["status"] for page in pages] == ["completed", "failed"]
    assert pages[1]["error_message"].startswith("OCR could not read this scanned page: ")
    assert "/nonexistent/ocr" in pages[1]["error_message"]
    chunks = (await file_route(http, owner, str(file_id), "chunks"))["chunks"]
    assert chunks and all(c["metadata"]["embedding_status"] == "completed" for c in chunks)
    assert all(c["page_numbers"] == [1] for c in chunks)
    deleted = await http.delete(f"/api/v2/files/{file_id}", headers=owner.headers)
    assert deleted.status_code == 200, deleted.text


async def test_analyze_answers_with_the_scanned_pages_text(http, engine) -> None:
    """analyze waits for the OCR that follows the text layer; analyze/async's job stays `processing` until then."""
    waited = await analyze(http, await new_caller(), scanned_pdf(), "analyzed.pdf", timeout=120)
    caller = await new_caller()
    accepted = await started(http, caller, scanned_pdf(), "analyzed-later.pdf")
    polled = await until_done(http, caller, accepted["poll_url"], seconds=120)

    assert waited.status_code == 200, waited.text
    body = waited.json()
    assert body["status"] == "completed" and body["text_extraction_status"] == "completed", body
    assert all(words in body["extracted_text"] for words in WORDS), body
    assert polled["status"] == "completed" and all(words in polled["result"]["extracted_text"] for words in WORDS)
