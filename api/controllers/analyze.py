"""Analyze a document in one call (or start it and poll), and read a processing job."""

from __future__ import annotations

import time

from litestar import Controller, get, post
from litestar.params import FromPath

from api import analyze
from api.deps import AppSettings, Blobs, Form, Tenant, Waker
from api.schemas.analyze import AnalyzeAccepted, AnalyzeResult, JobStatus


class AnalyzeController(Controller):
    path = "/api/v2"
    tags = ("analyze",)

    @post("/files/analyze", status_code=200, request_max_body_size=None)
    async def analyze(
        self, form: Form, tenant: Tenant, settings: AppSettings, blobs: Blobs, wake: Waker
    ) -> AnalyzeResult:
        """Upload a document (PDF, DOCX, TXT, MD; up to 10 MB) and wait up to `timeout` s for its text."""
        started = time.perf_counter()
        stored = await analyze.receive(form, tenant, settings, blobs)
        wake()
        return await analyze.outcome(tenant.id, stored, started)

    @post("/files/analyze/async", status_code=202, request_max_body_size=None)
    async def analyze_async(
        self, form: Form, tenant: Tenant, settings: AppSettings, blobs: Blobs, wake: Waker
    ) -> AnalyzeAccepted:
        """Same input as analyze; 202 at once with the job to poll."""
        stored = await analyze.receive(form, tenant, settings, blobs)
        wake()
        return await analyze.accepted(stored)

    @get("/job/{job_id:str}")
    async def job(self, tenant: Tenant, job_id: FromPath[str]) -> JobStatus:
        """A processing job of the tenant; a completed text extraction carries the analyze result."""
        return await analyze.job_status(tenant.id, job_id)
