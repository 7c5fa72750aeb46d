"""Processing routes: image variants, re-triggering them, and the status of a file's processing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect

from api.deps import AppSettings, Blobs, Tenant, Waker
from api.processing_views import processing_status, upload_status
from api.schemas.processing import ProcessingStatus, StuckUploads, TriggerVariantsResult, UploadStatus
from api.variant_urls import VARIANT_SECONDS, variant_url
from pipelines.engine.requeue import requeue
from pipelines.image.plan import VARIANTS
from pipelines.image.render import VARIANT_SIZES
from store import files, jobs, sessions
from store.errors import MalformedRequest, NotFound, WrongMediaType
from store.rows import FileRow
from store.tenants import TenantRef

VARIANT_TYPES = ("original", *VARIANT_SIZES)
MAX_STUCK_MINUTES = 366 * 24 * 60  # a year: further back than any upload still waiting to be processed


async def _image(tenant: TenantRef, file_id: str, media_types: tuple[str, ...] = ("image",)) -> FileRow:
    row = await files.get_file(tenant.id, file_id)
    if row.media_type not in media_types:
        kinds = " and ".join(f"{kind}s" for kind in media_types)
        raise WrongMediaType(f"variants exist for {kinds} only; this file is a {row.media_type}")
    return row


class ProcessingController(Controller):
    path = "/api/v2/files"
    tags = ("processing",)

    @get("/{file_id:str}/variant/{variant_type:str}", status_code=302)
    async def variant(
        self, tenant: Tenant, blobs: Blobs, file_id: FromPath[str], variant_type: FromPath[str]
    ) -> Redirect:
        """302 to the variant (or the original) through a URL valid for one hour. A video's variants are of its
        representative frame; its original is the video."""
        if variant_type not in VARIANT_TYPES:
            raise MalformedRequest(f"unknown variant {variant_type!r}; one of {', '.join(VARIANT_TYPES)}")
        row = await _image(tenant, file_id, ("image", "video"))
        if variant_type == "original":
            url: str | None = await blobs.presigned_get(row.object_key, VARIANT_SECONDS, content_type=row.content_type)
        else:
            url = await variant_url(blobs, row, variant_type)
        if url is None:
            raise NotFound(
                f"variant {variant_type} does not exist yet (variant_status: {row.variant_status})",
                code="variant_not_ready",
            )
        return Redirect(url, status_code=302)

    @post("/{file_id:str}/trigger-variants", status_code=200)
    async def trigger_variants(self, tenant: Tenant, wake: Waker, file_id: FromPath[str]) -> TriggerVariantsResult:
        """Queue variant generation again (recovery after a failure)."""
        row = await _image(tenant, file_id)
        job_id, created = await requeue(VARIANTS, row.id, row.tenant)
        if not created:
            return TriggerVariantsResult(
                success=True,
                message="Variant generation already in progress",
                task_id=f"task_{job_id}",
                current_status=row.variant_status,
                image_id=row.id,
                skipped_duplicate=True,
            )
        wake()
        return TriggerVariantsResult(
            success=True,
            message="Variant generation triggered",
            task_id=f"task_{job_id}",
            current_status="queued",
            image_id=row.id,
        )

    @get("/{file_id:str}/processing-status")
    async def processing_status(self, tenant: Tenant, file_id: FromPath[str]) -> ProcessingStatus:
        """Cross-media processing status with every component's status."""
        return processing_status(await files.get_file(tenant.id, file_id))

    @get("/uploads-status/{file_id:str}")
    async def uploads_status(self, tenant: Tenant, settings: AppSettings, file_id: FromPath[str]) -> UploadStatus:
        """Unified upload + processing status: components, Ray task ids, retries, stuck or not."""
        row = await files.get_file(tenant.id, file_id)
        stuck_after = timedelta(minutes=settings.engine.stuck_minutes)
        session = (await sessions.sessions_of_files([row.id])).get(row.id)
        return upload_status(row, await jobs.jobs_of_file(row.id), stuck_after, datetime.now(UTC), session)

    @get("/sessions/stuck")
    async def stuck(
        self,
        tenant: Tenant,
        stuck_minutes: Annotated[int, QueryParameter(ge=1, le=MAX_STUCK_MINUTES)] = 30,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> StuckUploads:
        """Files whose processing has made no progress for `stuck_minutes`."""
        now = datetime.now(UTC)
        threshold = timedelta(minutes=stuck_minutes)
        rows = await files.idle_unfinished(tenant.id, now - threshold, limit)
        ids = [row.id for row in rows]
        job_rows, session_of = await jobs.jobs_of_files(ids), await sessions.sessions_of_files(ids)
        items = [upload_status(row, job_rows[row.id], threshold, now, session_of.get(row.id)) for row in rows]
        return StuckUploads(stuck_count=len(items), images=items)
