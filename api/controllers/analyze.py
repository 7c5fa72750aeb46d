"""Analyze a document in one call (or start it and poll), and read a processing job."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath

from api import analyze
from api.auth import tenant_of
from api.schemas.analyze import AnalyzeAccepted, AnalyzeResult, JobStatus
from api.uploads.taking import take_upload


class AnalyzeController(Controller):
    path = "/api/v2"
    tags = ("analyze",)

    @post("/files/analyze", status_code=200, request_max_body_size=None)
    async def analyze(self, request: Request[Any, Any, State], state: State) -> AnalyzeResult:
        """Upload a document (PDF, DOCX, TXT, MD; up to 10 MB) and wait up to `timeout` s for its text."""
        started = time.perf_counter()
        stored = await take_upload(request, state, analyze.receive)
        return await analyze.outcome(tenant_of(request).id, stored, started)

    @post("/files/analyze/async", status_code=202, request_max_body_size=None)
    async def analyze_async(self, request: Request[Any, Any, State], state: State) -> AnalyzeAccepted:
        """Same input as analyze; 202 at once with the job to poll."""
        return await analyze.accepted(await take_upload(request, state, analyze.receive))

    @get("/job/{job_id:str}")
    async def job(self, request: Request[Any, Any, State], job_id: FromPath[str]) -> JobStatus:
        """A processing job of the tenant; a completed text extraction carries the analyze result."""
        return await analyze.job_status(tenant_of(request).id, job_id)
