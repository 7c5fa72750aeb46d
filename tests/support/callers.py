"""Tenants with an API key, as the tests call the API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """A tenant and the headers that authenticate as it."""

    tenant_id: uuid.UUID
    name: str
    headers: dict[str, str]
    key: str


async def new_caller(tier: str = "enterprise") -> Caller:
    """A new tenant with one new key; needs the database up. Of the tier without a monthly quota unless a test asks
    for another, so that tests uploading many files are not refused for quota."""
    from store.tenants import create_key, ensure_tenant

    tenant = await ensure_tenant(f"tenant-{uuid.uuid4().hex[:12]}", tier)
    key = await create_key(tenant)
    return Caller(tenant.id, tenant.name, {"Authorization": f"Bearer {key}"}, key)
