"""The Litestar application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.asyncpg import AsyncPgChannelsBackend
from litestar.datastructures import State
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.plugins.opentelemetry import OpenTelemetryConfig

from api.auth import PUBLIC, ApiKeyAuth, UnroutedAuth
from api.body_timeout import BodyIdleTimeout
from api.controllers.analyze import AnalyzeController
from api.controllers.direct_uploads import DirectUploadsController
from api.controllers.documents import DocumentsController
from api.controllers.duplicates import DuplicatesController
from api.controllers.export import ExportController
from api.controllers.files import FilesController
from api.controllers.processing import ProcessingController
from api.controllers.progress import session_progress
from api.controllers.quota import QuotaController
from api.controllers.search import SearchController
from api.controllers.sessions import SessionsController
from api.controllers.similar import SimilarController
from api.controllers.system import health, log_upload_event
from api.controllers.videos import VideosController
from api.deps import DEPENDENCIES
from api.errors import EXCEPTION_HANDLERS
from api.rate_limit import RateLimiter
from api.requests import ApiRequest
from api.security_headers import nosniff
from cluster import tracing
from cluster.runtime import shutdown_ray
from pipelines.inference.query_embedding import QueryEmbedder
from pipelines.purge import purge_forever
from pipelines.worker import configure_tracing, engine_for
from store.blob_store import BlobStore
from store.database import database_url, pooled
from store.settings import Settings, get_settings

# JSON bodies are small; the upload routes lift this limit and enforce their own.
MAX_JSON_BODY = 1024 * 1024


@contextlib.asynccontextmanager
async def _background(work: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    """Run `work(stop)` for the app's lifetime; on shutdown set `stop` and wait for it to finish."""
    stop = asyncio.Event()
    task = asyncio.create_task(work(stop))
    try:
        yield
    finally:
        stop.set()
        await task


def create_app(settings: Settings | None = None, *, purge: bool = True, processing: bool | None = None) -> Litestar:
    """The API. `purge=False` leaves the periodic purge to someone else (tests, extra replicas);
    `processing` defaults to settings.engine.serve (False: separate `scopix worker`s do it)."""
    settings = settings or get_settings()
    run_engine = settings.engine.serve if processing is None else processing

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(tracing.shutdown)  # last: the spans of everything below are sent
            await stack.enter_async_context(pooled(settings.database.pool_max_size))
            blobs = await stack.enter_async_context(BlobStore(settings))
            await blobs.ensure_bucket()
            app.state.blobs = blobs
            app.state.embedder = embedder = QueryEmbedder(settings)  # joins Ray on the first search, not here
            stack.push_async_callback(embedder.close)
            if purge:
                await stack.enter_async_context(_background(lambda stop: purge_forever(blobs, settings, stop)))
            if run_engine:
                app.state.engine = processing = engine_for(settings)
                stack.callback(shutdown_ray)  # after the engine has stopped (LIFO)
                await stack.enter_async_context(_background(processing.run))
            yield

    auth = DefineMiddleware(ApiKeyAuth, exclude=["^/schema"], exclude_from_auth_key=PUBLIC)
    stalled_bodies = DefineMiddleware(BodyIdleTimeout, seconds=settings.api.body_idle_seconds)
    middleware = [auth, stalled_bodies]
    configure_tracing(settings)
    if (provider := tracing.provider()) is not None:  # outermost: a refused request is traced too
        # No span per body message (a streamed upload has thousands) and none per health probe.
        config = OpenTelemetryConfig(tracer_provider=provider, exclude=["^/health"], exclude_spans=["receive", "send"])
        middleware.insert(0, config.middleware)
    app = Litestar(
        route_handlers=[
            FilesController,
            DirectUploadsController,
            ProcessingController,
            DocumentsController,
            VideosController,
            SearchController,
            SimilarController,
            DuplicatesController,
            QuotaController,
            ExportController,
            SessionsController,
            session_progress,
            AnalyzeController,
            health,
            log_upload_event,
        ],
        dependencies=DEPENDENCIES,
        lifespan=[lifespan],
        state=State(
            {
                "settings": settings,
                "engine": None,
                "embedder": None,
                "event_limiter": RateLimiter(settings.client_events.per_minute, settings.client_events.burst),
                "key_limiter": RateLimiter(settings.quotas.requests_per_minute, settings.quotas.request_burst),
            }
        ),
        middleware=middleware,
        before_send=[nosniff],
        # Sessions' progress, announced by the engines with Postgres NOTIFY (store/sessions.py), to websockets.
        plugins=[ChannelsPlugin(AsyncPgChannelsBackend(dsn=database_url(settings)), arbitrary_channels_allowed=True)],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_JSON_BODY,
        request_class=ApiRequest,
        openapi_config=OpenAPIConfig(title="Scopix Files API", version="2.0.0"),
    )
    app.asgi_handler = UnroutedAuth(app.asgi_handler)
    return app
