"""What the handlers are given, by parameter name, through Litestar's dependency injection: the calling tenant,
the settings, the object store, the query embedder, the engine's waker and an upload's multipart body. The
lifespan puts the shared objects in the app's state; nothing else reads it, but for the telemetry route's guard
(api/controllers/system.py), which runs before injection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.types import Scope

from api.uploads.form import MultipartBody, boundary_of
from pipelines.inference.query_embedding import QueryEmbedder
from store.blob_store import BlobStore
from store.settings import Settings
from store.tenants import TenantRef

# What a handler writes to be given one: Litestar injects by the parameter's name (those of DEPENDENCIES), and
# this annotation says the parameter is injected.
Tenant: TypeAlias = NamedDependency[TenantRef]  # tenant
AppSettings: TypeAlias = NamedDependency[Settings]  # settings
Blobs: TypeAlias = NamedDependency[BlobStore]  # blobs
Embedder: TypeAlias = NamedDependency[QueryEmbedder]  # embedder
Waker: TypeAlias = NamedDependency[Callable[[], None]]  # wake
Form: TypeAlias = NamedDependency[MultipartBody]  # form


def _tenant(scope: Scope) -> TenantRef:
    """The tenant the auth middleware (api/auth.py) found; it answers 401 before a handler is reached.
    Read from the scope, which requests and websockets share."""
    return scope["user"]


def _settings(state: State) -> Settings:
    return state.settings


def _blobs(state: State) -> BlobStore:
    return state.blobs


def _embedder(state: State) -> QueryEmbedder:
    return state.embedder


def _idle() -> None:
    """No engine runs in this process (`scopix worker`s process the jobs): they poll the queue themselves."""


def _wake(state: State) -> Callable[[], None]:
    """Tells the engine of this process that jobs were queued, so that it claims them now, not at its next poll."""
    engine = state.engine
    return _idle if engine is None else engine.wake


def _form(request: Request[Any, Any, State]) -> MultipartBody:
    """The upload's body, streamed; 400 unless it is multipart/form-data with a boundary."""
    return MultipartBody(request.stream(), request.content_length, boundary_of(request.headers.get("content-type")))


_PROVIDERS: dict[str, Callable[..., Any]] = {
    "tenant": _tenant,
    "settings": _settings,
    "blobs": _blobs,
    "embedder": _embedder,
    "wake": _wake,
    "form": _form,
}
DEPENDENCIES = {name: Provide(provider, sync_to_thread=False) for name, provider in _PROVIDERS.items()}
