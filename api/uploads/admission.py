"""Admission of a streaming upload or a batch, before its body is read: a slot among the tenant's uploads in flight
(429 with Retry-After when its tier's are all taken) and at least one credit left (403 naming the shortfall). The
slot is a lease row in Postgres, so that every replica counts the same uploads; it is renewed while the body
arrives and released at the end, and one whose replica died expires on its own within a lease's time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from store import quotas
from store.errors import QuotaExceeded
from store.settings import QuotaSettings
from store.tenants import TenantRef

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def admitted(
    tenant: TenantRef, settings: QuotaSettings, drain: Callable[[], Awaitable[None]]
) -> AsyncIterator[None]:
    """Hold a slot during the block. A refusal for quota first drains what the client is still sending, so that it
    can read why; one for uploads in flight answers at once, which is its point."""
    seconds = settings.upload_lease_seconds
    try:
        lease = await quotas.acquire_lease(tenant.id, seconds, settings.busy_retry_seconds)
    except QuotaExceeded:
        await drain()
        raise
    renewal = asyncio.create_task(_renew(lease, seconds))
    try:
        yield
    finally:
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewal
        await asyncio.shield(quotas.release_lease(lease))


async def _renew(lease: uuid.UUID, seconds: float) -> None:
    """Keep the lease alive while the upload runs, renewing it three times per its lifetime."""
    while True:
        await asyncio.sleep(seconds / 3)
        try:
            await quotas.renew_lease(lease, seconds)
        except Exception as exc:  # the database blinked: the upload goes on, the next renewal may hold
            log.warning("could not renew upload lease %s: %s", lease, exc)
