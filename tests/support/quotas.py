"""A tenant's standing this month, set and read behind the API, so that quota tests need not upload a tier's worth
of files first."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.callers import Caller


async def set_used(caller: Caller, used: int, credits: int = 0) -> None:
    """This month's credits used from the quota, and the prepaid credits left."""
    from store.quotas import month_of
    from store.tables import Tenant

    await Tenant.raw(
        "INSERT INTO tenant_usage (tenant, month, used) VALUES ({}, {}, {})"
        " ON CONFLICT (tenant, month) DO UPDATE SET used = excluded.used, credits_used = 0",
        caller.tenant_id,
        month_of(datetime.now(UTC)),
        used,
    )
    await Tenant.update({Tenant.prepaid_credits: credits}).where(Tenant.id == caller.tenant_id)


async def standing(caller: Caller) -> tuple[int, int]:
    """(credits used this month, prepaid credits left)."""
    from store.quotas import usage

    now = await usage(caller.tenant_id)
    return now.current_usage, now.prepaid_credits
