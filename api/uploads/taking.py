"""What every upload route does around its own receiver: hand it the request's body, length, caller, settings, store
and multipart boundary, then wake the engine, whose jobs the upload has just queued."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from litestar import Request
from litestar.datastructures import State

from api.auth import tenant_of
from api.uploads.form import boundary_of
from store.blob_store import BlobStore
from store.settings import Settings
from store.tenants import TenantRef

T = TypeVar("T")
Receiver = Callable[[AsyncIterator[bytes], int | None, TenantRef, Settings, BlobStore, str], Awaitable[T]]


async def take_upload(request: Request[Any, Any, State], state: State, receive: Receiver[T]) -> T:
    received = await receive(
        request.stream(),
        request.content_length,
        tenant_of(request),
        state.settings,
        state.blobs,
        boundary_of(request.headers.get("content-type")),
    )
    if state.engine is not None:
        state.engine.wake()
    return received
