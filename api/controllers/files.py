"""The file resource's core routes: upload, list, get, download, patch, delete, restore."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Redirect

from api.deps import AppSettings, Blobs, Form, Tenant, Waker
from api.file_actions import batch_delete, delete_file, patch_file, restore_file
from api.file_views import detail, list_item
from api.instants import instant
from api.paging import Offset
from api.schemas.files import (
    BatchDeleteRequest,
    BatchDeleteResult,
    FileDeleted,
    FileDetail,
    FileList,
    FilePatch,
    FilePatchResult,
    FileRestored,
    FileUploadResponse,
)
from api.schemas.text import TEXT_PATTERN, Line
from api.uploads.streaming import receive_upload
from api.variant_urls import variant_urls
from pipelines.intake.file_names import download_name
from store import files
from store.blob_store import content_disposition
from store.files import FileQuery

MediaType = Literal["image", "document", "video", "link"]


class FilesController(Controller):
    path = "/api/v2/files"
    tags = ("files",)

    @post("/upload", status_code=201, request_max_body_size=None)
    async def upload(
        self, form: Form, tenant: Tenant, settings: AppSettings, blobs: Blobs, wake: Waker
    ) -> FileUploadResponse:
        """Stream one file (multipart/form-data, field `file`) to storage; 201 with the new file."""
        uploaded = await receive_upload(form, tenant, settings, blobs)
        wake()
        return uploaded

    @get("/")
    async def list_files(
        self,
        tenant: Tenant,
        blobs: Blobs,
        search: Annotated[str | None, QueryParameter(min_length=1, max_length=1000, pattern=TEXT_PATTERN)] = None,
        search_mode: FromQuery[Literal["all", "metadata", "visible_text"]] = "all",
        tags: FromQuery[list[Line] | None] = None,
        media_types: FromQuery[list[MediaType] | None] = None,
        folder_id: FromQuery[uuid.UUID | None] = None,
        project_id: FromQuery[uuid.UUID | None] = None,
        has_description: FromQuery[bool | None] = None,
        ids: FromQuery[list[uuid.UUID] | None] = None,
        compliance_status: FromQuery[Line | None] = None,
        date_from: FromQuery[datetime | None] = None,
        date_to: FromQuery[datetime | None] = None,
        sort_by: FromQuery[Literal["created_at", "content_created_at", "title", "size_bytes"] | None] = None,
        sort_order: FromQuery[Literal["asc", "desc"]] = "desc",
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        offset: Offset = 0,
    ) -> FileList:
        """List the tenant's files with full-text search, filters, sorting and pagination."""
        query = FileQuery(
            search=search.strip() or None if search else None,
            search_mode=search_mode,
            tags=tags or (),
            media_types=media_types or (),
            folder_id=folder_id,
            project_id=project_id,
            has_description=has_description,
            ids=ids or (),
            compliance_status=compliance_status,
            date_from=instant("date_from", date_from),
            date_to=instant("date_to", date_to),
            sort_by=sort_by,
            sort_order=sort_order,
            limit=limit,
            offset=offset,
        )
        rows, total = await files.list_files(tenant.id, query)
        return FileList(
            items=[list_item(row, await variant_urls(blobs, row)) for row in rows],
            total_count=total,
            limit=limit,
            offset=offset,
            has_more=offset + len(rows) < total,
        )

    @post("/batch-delete", status_code=200)
    async def batch_delete(self, tenant: Tenant, data: JSONBody[BatchDeleteRequest]) -> BatchDeleteResult:
        """Soft-delete up to 100 files, each reported on its own."""
        return await batch_delete(tenant, data)

    @get("/{file_id:str}")
    async def get_file(self, tenant: Tenant, blobs: Blobs, file_id: FromPath[str]) -> FileDetail:
        """One file by full id or 8-character prefix, shaped by its media type."""
        row = await files.get_file(tenant.id, file_id)
        return detail(row, await variant_urls(blobs, row))

    @get("/{file_id:str}/download", status_code=302)
    async def download(self, tenant: Tenant, settings: AppSettings, blobs: Blobs, file_id: FromPath[str]) -> Redirect:
        """302 to a presigned URL for the original bytes, named as uploaded but with the extension and
        Content-Type of the detected format (text uploaded as `update.hta` downloads as `update.txt`)."""
        row = await files.get_file(tenant.id, file_id)
        name = download_name(row.filename, row.content_type)
        url = await blobs.presigned_get(row.object_key, settings.storage.download_url_seconds, name, row.content_type)
        return Redirect(url, status_code=302, headers={"Content-Disposition": content_disposition(name)})

    @patch("/{file_id:str}")
    async def patch_file(self, tenant: Tenant, file_id: FromPath[str], data: JSONBody[FilePatch]) -> FilePatchResult:
        """Change title, tags or user_description; only the fields sent change."""
        return await patch_file(tenant, file_id, data)

    @delete("/{file_id:str}", status_code=200)
    async def delete_file(self, tenant: Tenant, file_id: FromPath[str]) -> FileDeleted:
        """Soft delete: hidden at once, restorable within the retention window, then purged."""
        return await delete_file(tenant, file_id)

    @post("/{file_id:str}/restore", status_code=200)
    async def restore(self, tenant: Tenant, settings: AppSettings, file_id: FromPath[str]) -> FileRestored:
        """Undo a soft delete within the retention window."""
        return await restore_file(tenant, file_id, settings.retention.soft_delete_days)
