"""The Litestar application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.datastructures import State
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig

from api.auth import PUBLIC, ApiKeyAuth
from api.controllers.files import FilesController
from api.controllers.system import health, log_upload_event
from api.errors import EXCEPTION_HANDLERS
from pipelines.purge import purge_forever
from store.blobs import BlobStore
from store.database import engine
from store.settings import Settings, get_settings

# JSON bodies are small; the upload routes lift this limit and enforce their own.
MAX_JSON_BODY = 1024 * 1024


def create_app(settings: Settings | None = None, *, purge: bool = True) -> Litestar:
    """The API; `purge=False` leaves the periodic purge to someone else (tests, extra replicas)."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = engine()
        await db.start_connection_pool(max_size=settings.db_pool_max_size)
        try:
            async with BlobStore(settings) as blobs:
                await blobs.ensure_bucket()
                app.state.blobs = blobs
                background = (
                    asyncio.create_task(
                        purge_forever(blobs, settings.soft_delete_days, settings.purge_interval_seconds)
                    )
                    if purge
                    else None
                )
                try:
                    yield
                finally:
                    if background is not None:
                        background.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await background
        finally:
            await db.close_connection_pool()

    auth = DefineMiddleware(ApiKeyAuth, exclude=["^/schema"], exclude_from_auth_key=PUBLIC)
    return Litestar(
        route_handlers=[FilesController, health, log_upload_event],
        lifespan=[lifespan],
        state=State({"settings": settings}),
        middleware=[auth],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_JSON_BODY,
        openapi_config=OpenAPIConfig(title="Scopix Files API", version="2.0.0"),
    )
