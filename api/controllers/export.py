"""Exports of the caller's file metadata (api/export.py)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import JSONBody

from api.auth import tenant_of
from api.export import export, export_columns
from api.schemas.export import ExportColumns, ExportRequest, ExportResult


class ExportController(Controller):
    path = "/api/v2/files/export"
    tags = ("export",)

    @get("/columns")
    async def columns(self) -> ExportColumns:
        """The columns an export can hold, by group."""
        return export_columns()

    @post("/", status_code=200)
    async def export_files(
        self, request: Request[Any, Any, State], state: State, data: JSONBody[ExportRequest]
    ) -> ExportResult:
        """The caller's files (or those named) as CSV, XLSX or DOCX, at a download URL valid for an hour."""
        return await export(tenant_of(request).id, data, state.blobs)
