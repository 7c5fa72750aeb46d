"""Analyze: a document goes through the streaming upload (it is an ordinary stored file afterwards), then its
`document_text` job is awaited for up to `timeout` seconds, and the outcome is told as the spec's union. Jobs
are readable on their own (GET /job/{job_id}) so that a client can poll what the timeout left running."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TypeVar

from api.schemas.analyze import (
    AnalyzeAccepted,
    AnalyzeCompleted,
    AnalyzeFailed,
    AnalyzeProcessing,
    AnalyzeResult,
    AnalyzeSkipped,
    JobStatus,
)
from api.shaping import shaped
from api.uploads.form import MultipartBody
from api.uploads.streaming import StoredUpload, UploadRules, store_upload
from pipelines.document.text import OCR_STEP
from store import files, jobs
from store.blob_store import BlobStore
from store.errors import NotFound, Unavailable
from store.rows import FileRow, JobRow
from store.settings import MIB, Settings
from store.tenants import TenantRef

Shape = TypeVar("Shape", AnalyzeCompleted, AnalyzeSkipped)

MAX_BYTES = 10 * MIB
FORMATS = ("pdf", "docx", "txt", "md")
MIN_TIMEOUT, MAX_TIMEOUT, DEFAULT_TIMEOUT = 5.0, 120.0, 60.0
TEXT_STEP = "document_text"
POLL_SECONDS = 0.1
_ENDED = ("completed", "failed", "cancelled")
_LARGER_FILES = {
    "endpoint": "/api/v2/files/upload",
    "message": "analyze takes documents up to 10 MB; upload larger ones and poll their processing status",
}


def _timeout(value: str) -> float:
    try:
        seconds = float(value.strip())
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not MIN_TIMEOUT <= seconds <= MAX_TIMEOUT:  # NaN fails too
        raise ValueError(f"must be between {MIN_TIMEOUT:g} and {MAX_TIMEOUT:g} seconds")
    return seconds


def _rules(settings: Settings) -> UploadRules:
    return UploadRules(
        min(MAX_BYTES, settings.storage.max_upload_bytes), _LARGER_FILES, formats=FORMATS, fields={"timeout": _timeout}
    )


async def receive(body: MultipartBody, tenant: TenantRef, settings: Settings, blobs: BlobStore) -> StoredUpload:
    """Store the analyze form's document like any upload (its text job is queued with it)."""
    return await store_upload(body, tenant, blobs, _rules(settings), settings.quotas)


def poll_url(job_id: uuid.UUID) -> str:
    return f"/api/v2/job/{job_id}"


async def _text_job(file_id: uuid.UUID) -> JobRow:
    job = await jobs.latest_job(file_id, TEXT_STEP)
    if job is None:  # documents stored before text extraction existed
        raise Unavailable(f"document {file_id} has no text extraction job", code="no_text_job")
    return job


async def accepted(stored: StoredUpload) -> AnalyzeAccepted:
    """analyze/async: the job to poll (a skipped duplicate's is its existing copy's)."""
    job = await _text_job(stored.file_id)
    return AnalyzeAccepted(job_id=job.id, status="processing", poll_url=poll_url(job.id))


async def wait_for_job(tenant_id: uuid.UUID, job_id: uuid.UUID, seconds: float) -> JobRow:
    """The job's row once it has ended, or as it stands when `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        job = await jobs.job_of_tenant(tenant_id, job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        left = deadline - time.monotonic()
        if job.status in _ENDED or left <= 0:
            return job
        await asyncio.sleep(min(POLL_SECONDS, left))


async def outcome(tenant_id: uuid.UUID, stored: StoredUpload, started: float) -> AnalyzeResult:
    """analyze: wait for the document's text up to the form's timeout, then say where it stands."""
    if stored.skipped:
        row = await files.get_file(tenant_id, str(stored.file_id))
        return _document(AnalyzeSkipped, row, _elapsed_ms(started))
    timeout = stored.fields.get("timeout", DEFAULT_TIMEOUT)
    job = await wait_for_job(tenant_id, (await _text_job(stored.file_id)).id, timeout)
    if job.status == "completed":  # a PDF with scanned pages has its text once their OCR has ended
        ocr = await jobs.latest_job(stored.file_id, OCR_STEP)
        if ocr is not None and ocr.created_at >= job.created_at:
            job = await wait_for_job(tenant_id, ocr.id, timeout - _elapsed_ms(started) / 1000)
    row = await files.get_file(tenant_id, str(stored.file_id))
    if row.text_extraction_status == "completed":
        return _document(AnalyzeCompleted, row, _elapsed_ms(started))
    if job.status in _ENDED:
        return shaped(
            AnalyzeFailed,
            row,
            document_id=row.id,
            job_id=job.id,
            processing_time_ms=_elapsed_ms(started),
            error_message=job.error or row.error_message or f"the text extraction was {job.status}",
        )
    return shaped(AnalyzeProcessing, row, document_id=row.id, job_id=job.id, poll_url=poll_url(job.id))


async def job_status(tenant_id: uuid.UUID, ref: str) -> JobStatus:
    """One of the tenant's jobs; the jobs of other tenants and of deleted files do not exist here."""
    missing = NotFound(f"job {ref} not found")
    try:
        job_id = uuid.UUID(ref)
    except ValueError:
        raise missing from None
    job = await jobs.job_of_tenant(tenant_id, job_id)
    if job is None:
        raise missing
    try:
        row = await files.get_file(tenant_id, str(job.file_id))
    except NotFound:
        raise missing from None
    # The text job of a PDF with scanned pages is done once their OCR is: till then its text is still coming.
    awaits_ocr = job.step == TEXT_STEP and row.text_extraction_status == "processing"
    result = None
    completed = job.status == "completed"  # the row, read after the job, may be further along than it
    text_done = job.step in (TEXT_STEP, OCR_STEP) and row.text_extraction_status == "completed"
    if completed and text_done and job.finished_at is not None:
        took = (job.finished_at - job.created_at).total_seconds() * 1000
        result = _document(AnalyzeCompleted, row, round(took, 1))
    return shaped(
        JobStatus,
        job,
        job_id=job.id,
        status="processing" if job.status in jobs.ACTIVE or awaits_ocr else job.status,
        document_id=job.file_id,
        retry_count=max(job.attempts - 1, 0),
        error_message=job.error,
        result=result,
    )


def _document(kind: type[Shape], row: FileRow, processing_time_ms: float) -> Shape:
    return shaped(kind, row, document_id=row.id, processing_time_ms=processing_time_ms)


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
