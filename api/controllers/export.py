"""Exports of the caller's file metadata (api/export.py)."""

from __future__ import annotations

from datetime import timedelta

from litestar import Controller, get, post
from litestar.params import JSONBody

from api.deps import AppSettings, Blobs, Tenant
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
        self, tenant: Tenant, blobs: Blobs, settings: AppSettings, data: JSONBody[ExportRequest]
    ) -> ExportResult:
        """The caller's files (or those named) as CSV, XLSX or DOCX, at a download URL valid for an hour (less when
        exports are kept less)."""
        return await export(tenant.id, data, blobs, timedelta(hours=settings.retention.export_hours))
