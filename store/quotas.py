"""Quotas, prepaid credits and uploads in flight, counted in Postgres so that every API replica sees the same
numbers.

One unit, the credit: each file recorded uses one, and a video's analysis two more. A tier allows so many a calendar
month (UTC; -1 for unlimited); a tenant's prepaid credits extend that, and are drawn only once the month's are used
up. A duplicate skipped (the tenant's copy is answered) uses nothing; a deleted file gives nothing back.

Work that may not happen holds a reservation: a direct upload's file from its intent until it completes, a video's
analysis from its upload until the analysis ends. A reservation remembers where its credits came from (the month's
quota, prepaid credits), and `settle` either keeps them spent or puts them back.

Every change happens with the tenant's row locked (FOR NO KEY UPDATE: inserts that reference the tenant are not
blocked), in the caller's transaction when there is one, so that the check and the row it admits (a file, an
intent, a lease) commit together: two replicas racing for the last credit or the last slot cannot both win."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from store.database import transaction
from store.errors import InvalidInput, NotFound, QuotaExceeded, TooBusy
from store.tables import Tenant

UNLIMITED = -1
VIDEO_CREDITS = 2  # a video's analysis, reserved at upload and settled when the analysis ends
FILE, VIDEO = "file", "video"  # what a reservation holds credits for


@dataclass(frozen=True)
class TierLimits:
    monthly_files: int  # credits a month; UNLIMITED for no limit
    max_batch_size: int  # files in one batch upload (the spec's per-tier file count)
    max_concurrent_uploads: int  # streaming uploads, batches and open direct uploads at once


TIER_LIMITS = {
    "free": TierLimits(monthly_files=100, max_batch_size=10, max_concurrent_uploads=2),
    "starter": TierLimits(monthly_files=1_000, max_batch_size=50, max_concurrent_uploads=5),
    "professional": TierLimits(monthly_files=10_000, max_batch_size=100, max_concurrent_uploads=10),
    "enterprise": TierLimits(monthly_files=UNLIMITED, max_batch_size=200, max_concurrent_uploads=50),
}


def limits_of(tier: str) -> TierLimits:
    return TIER_LIMITS.get(tier, TIER_LIMITS["free"])


@dataclass(frozen=True)
class Usage:
    """Where a tenant stands this month."""

    tier: str
    limits: TierLimits
    current_usage: int  # credits used this month, from the quota and from prepaid credits
    prepaid_credits: int
    month_left: int  # what is left of the month's quota; UNLIMITED for no limit

    @property
    def available(self) -> int:
        """Credits that may still be used: the month's left and the prepaid ones; UNLIMITED for no limit."""
        return UNLIMITED if self.month_left == UNLIMITED else self.month_left + self.prepaid_credits

    def shortfall(self, requested: int) -> int:
        return 0 if self.available == UNLIMITED else max(requested - self.available, 0)

    def describe_shortfall(self, requested: int) -> str:
        limit = self.limits.monthly_files
        return (
            f"{requested} credits requested but only {self.available} left ({self.current_usage} used this month of "
            f"the {self.tier} tier's {limit}, {self.prepaid_credits} prepaid credits): {self.shortfall(requested)} "
            "short; add credits or wait for next month"
        )


def month_of(moment: datetime) -> date:
    moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


_STANDING = """
    SELECT t.tier, t.prepaid_credits, coalesce(u.used, 0) AS used, coalesce(u.credits_used, 0) AS credits_used,
        {in_flight} AS in_flight
    FROM tenant t LEFT JOIN tenant_usage u ON u.tenant = t.id AND u.month = {{}}
    WHERE t.id = {{}}
"""
# Uploads in flight: open intents (until they expire) and streaming uploads' live leases.
_IN_FLIGHT = """(
    (SELECT count(*) FROM upload_intent i WHERE i.tenant = t.id AND i.expires_at > {}
        AND i.status IN ('PENDING', 'UPLOADED', 'VERIFYING'))
    + (SELECT count(*) FROM upload_lease l WHERE l.tenant = t.id AND l.expires_at > {}))"""


async def _locked(tenant_id: uuid.UUID, now: datetime, *, in_flight: bool = False) -> tuple[Usage, int]:
    """The tenant's usage (and, when asked, its uploads in flight), its row locked until the caller's transaction
    ends. Locked first, then read in a statement of its own: a statement that waited for the lock re-reads only the
    locked row, and would see the usage and the uploads of the snapshot it started with, before the transaction it
    waited for committed."""
    if not await Tenant.raw("SELECT 1 FROM tenant WHERE id = {} FOR NO KEY UPDATE", tenant_id):
        raise NotFound(f"tenant {tenant_id} not found")
    query = _STANDING.format(in_flight=_IN_FLIGHT if in_flight else "0")
    rows = await Tenant.raw(query, *([now, now] if in_flight else []), month_of(now), tenant_id)
    return _usage(rows[0]), int(rows[0]["in_flight"])


def _usage(row: Mapping[str, Any]) -> Usage:
    limits = limits_of(row["tier"])
    used = row["used"]
    left = UNLIMITED if limits.monthly_files == UNLIMITED else max(limits.monthly_files - used, 0)
    return Usage(row["tier"], limits, used + row["credits_used"], row["prepaid_credits"], left)


async def usage(tenant_id: uuid.UUID, now: datetime | None = None) -> Usage:
    """Where the tenant stands this month (read without a lock: a hint, as quota-check is)."""
    now = now or datetime.now(UTC)
    rows = await Tenant.raw(_STANDING.format(in_flight="0"), month_of(now), tenant_id)
    if not rows:
        raise NotFound(f"tenant {tenant_id} not found")
    return _usage(rows[0])


def _exceeded(standing: Usage, requested: int) -> QuotaExceeded:
    shortfall = standing.shortfall(requested)
    detail = standing.describe_shortfall(requested)
    return QuotaExceeded(detail, requested=requested, available=standing.available, shortfall=shortfall)


async def _draw(tenant_id: uuid.UUID, units: int, now: datetime, standing: Usage) -> tuple[int, int, Usage]:
    """Spend `units` credits, the month's first, then prepaid ones, from `standing` (the tenant's row locked by the
    caller); how many came from each, and the standing after. QuotaExceeded, spending nothing, when there are not
    enough."""
    if standing.shortfall(units):
        raise _exceeded(standing, units)
    from_month = units if standing.month_left == UNLIMITED else min(units, standing.month_left)
    from_credits = units - from_month
    await Tenant.raw(
        """
        INSERT INTO tenant_usage (tenant, month, used, credits_used) VALUES ({}, {}, {}, {})
        ON CONFLICT (tenant, month) DO UPDATE SET used = tenant_usage.used + excluded.used,
            credits_used = tenant_usage.credits_used + excluded.credits_used
        """,
        tenant_id,
        month_of(now),
        from_month,
        from_credits,
    )
    if from_credits:
        await Tenant.raw(
            "UPDATE tenant SET prepaid_credits = prepaid_credits - {} WHERE id = {}", from_credits, tenant_id
        )
    after = dataclasses.replace(
        standing,
        current_usage=standing.current_usage + units,
        prepaid_credits=standing.prepaid_credits - from_credits,
        month_left=standing.month_left if standing.month_left == UNLIMITED else standing.month_left - from_month,
    )
    return from_month, from_credits, after


async def _reserve(
    tenant_id: uuid.UUID, file_id: uuid.UUID, purpose: str, units: int, now: datetime, standing: Usage
) -> Usage:
    """Draw `units` for `purpose` of the file, remembering where they came from; the standing after."""
    from_month, from_credits, after = await _draw(tenant_id, units, now, standing)
    await Tenant.raw(
        "INSERT INTO credit_reservation (file_id, purpose, tenant, month, quota_units, credit_units, created_at)"
        " VALUES ({}, {}, {}, {}, {}, {}, {})",
        file_id,
        purpose,
        tenant_id,
        month_of(now),
        from_month,
        from_credits,
        now,
    )
    return after


_Reserved = tuple[uuid.UUID, str, int]  # file id, purpose, credits


async def _spend(tenant_id: uuid.UUID, standing: Usage, now: datetime, files: int, reserved: list[_Reserved]) -> None:
    """Spend `files` credits and make the reservations (file id, purpose, units), all or nothing: QuotaExceeded
    naming the whole request when it does not fit."""
    requested = files + sum(units for _, _, units in reserved)
    if standing.shortfall(requested):
        raise _exceeded(standing, requested)
    if files:
        standing = (await _draw(tenant_id, files, now, standing))[2]
    for file_id, purpose, units in reserved:
        standing = await _reserve(tenant_id, file_id, purpose, units, now, standing)


async def charge(tenant_id: uuid.UUID, files: int, videos: list[uuid.UUID]) -> None:
    """Spend a credit per file recorded and reserve VIDEO_CREDITS for each video's analysis, in the caller's
    transaction (the one that records the files): all or nothing."""
    now = datetime.now(UTC)
    async with transaction():
        standing, _ = await _locked(tenant_id, now)
        await _spend(tenant_id, standing, now, files, [(file_id, VIDEO, VIDEO_CREDITS) for file_id in videos])


async def settle(file_id: uuid.UUID, purpose: str, *, spent: bool) -> bool:
    """End a reservation: its credits stay spent, or go back where they came from (the month they were drawn in,
    prepaid credits). Whether there was one: settling twice changes nothing."""
    async with transaction():
        rows = await Tenant.raw(
            "DELETE FROM credit_reservation WHERE file_id = {} AND purpose = {} RETURNING *", file_id, purpose
        )
        if not rows or spent:
            return bool(rows)
        held = rows[0]
        await _locked(held["tenant"], datetime.now(UTC))  # the tenant's row first, as every charge takes it
        await Tenant.raw(
            "UPDATE tenant_usage SET used = greatest(used - {}, 0), credits_used = greatest(credits_used - {}, 0)"
            " WHERE tenant = {} AND month = {}",
            held["quota_units"],
            held["credit_units"],
            held["tenant"],
            held["month"],
        )
        if held["credit_units"]:
            await Tenant.raw(
                "UPDATE tenant SET prepaid_credits = prepaid_credits + {} WHERE id = {}",
                held["credit_units"],
                held["tenant"],
            )
    return True


async def settle_video_reservation(file_id: uuid.UUID, succeeded: bool) -> bool:
    """What a video's analysis calls when it ends: its VIDEO_CREDITS stay spent when it succeeded, else they are
    refunded. Idempotent; False when the file holds no reservation (not a video, or settled already)."""
    return await settle(file_id, VIDEO, spent=succeeded)


async def release(file_id: uuid.UUID) -> None:
    """Refund everything reserved for a file that will not be (an intent aborted, expired or refused)."""
    for purpose in (FILE, VIDEO):
        await settle(file_id, purpose, spent=False)


async def settle_direct_upload(tenant_id: uuid.UUID, file_id: uuid.UUID, *, recorded: bool, video: bool) -> None:
    """A direct upload's credits once it completes, in the transaction that records its file: the file's stays
    spent when a new file was recorded, and the analysis's is kept, refunded or (a video claimed as something else)
    reserved now, by what the bytes turned out to be; a duplicate skipped refunds everything."""
    if not recorded:
        await release(file_id)
        return
    async with transaction():
        if not await settle(file_id, FILE, spent=True):  # an intent from before reservations existed
            await charge(tenant_id, 1, [])
        held = await Tenant.raw("SELECT 1 FROM credit_reservation WHERE file_id = {} AND purpose = {}", file_id, VIDEO)
        if video and not held:
            await charge(tenant_id, 0, [file_id])
        elif held and not video:
            await settle(file_id, VIDEO, spent=False)


async def _admit(tenant_id: uuid.UUID, now: datetime, retry_after: int) -> Usage:
    """Lock the tenant and check it has a slot for one more upload in flight (TooBusy when not)."""
    standing, in_flight = await _locked(tenant_id, now, in_flight=True)
    most = standing.limits.max_concurrent_uploads
    if in_flight >= most:
        raise TooBusy(
            f"{most} uploads already in flight, the most the {standing.tier} tier allows at once: finish or abort "
            f"one (open direct uploads count), or retry in {retry_after} s",
            retry_after=retry_after,
            max_concurrent_uploads=most,
        )
    return standing


async def admit_intent(tenant_id: uuid.UUID, file_id: uuid.UUID, video: bool, retry_after: int) -> None:
    """Admit a direct upload, in the transaction that records its intent: a slot in flight (the intent holds it
    while open), its file's credit and, for a video, its analysis's reserved until the upload ends."""
    now = datetime.now(UTC)
    async with transaction():
        standing = await _admit(tenant_id, now, retry_after)
        reserved: list[_Reserved] = [(file_id, FILE, 1)]
        if video:
            reserved.append((file_id, VIDEO, VIDEO_CREDITS))
        await _spend(tenant_id, standing, now, 0, reserved)


async def acquire_lease(tenant_id: uuid.UUID, seconds: float, retry_after: int) -> uuid.UUID:
    """A slot for a streaming upload or a batch, before its body is read: TooBusy when the tenant has none free,
    QuotaExceeded when not even one credit is left. The lease expires unless renewed; expired ones of the tenant
    are cleared on the way."""
    now = datetime.now(UTC)
    lease_id = uuid.uuid4()
    async with transaction():
        standing = await _admit(tenant_id, now, retry_after)
        if standing.shortfall(1):
            raise _exceeded(standing, 1)
        await Tenant.raw(
            """
            WITH expired AS (DELETE FROM upload_lease WHERE tenant = {} AND expires_at <= {})
            INSERT INTO upload_lease (id, tenant, expires_at) VALUES ({}, {}, {})
            """,
            tenant_id,
            now,
            lease_id,
            tenant_id,
            now + timedelta(seconds=seconds),
        )
    return lease_id


async def renew_lease(lease_id: uuid.UUID, seconds: float) -> None:
    await Tenant.raw(
        "UPDATE upload_lease SET expires_at = {} WHERE id = {}",
        datetime.now(UTC) + timedelta(seconds=seconds),
        lease_id,
    )


async def release_lease(lease_id: uuid.UUID) -> None:
    await Tenant.raw("DELETE FROM upload_lease WHERE id = {}", lease_id)


async def add_credits(tenant_name: str, credits: int) -> int:
    """Add prepaid credits (a negative number takes unused ones back); the tenant's balance after."""
    rows = await Tenant.raw(
        "UPDATE tenant SET prepaid_credits = prepaid_credits + {} WHERE name = {} AND prepaid_credits + {} >= 0"
        " RETURNING prepaid_credits",
        credits,
        tenant_name.strip(),
        credits,
    )
    if rows:
        return int(rows[0]["prepaid_credits"])
    if await Tenant.exists().where(Tenant.name == tenant_name.strip()):
        raise InvalidInput("would leave the tenant fewer than 0 prepaid credits", field="credits")
    raise NotFound(f"no tenant named {tenant_name!r}")


async def usages(tenant_name: str | None = None) -> list[tuple[str, Usage]]:
    """Every tenant (or the one named) and where it stands this month, by name."""
    rows = await Tenant.raw(
        f"""
        SELECT t.name, t.tier, t.prepaid_credits, coalesce(u.used, 0) AS used,
            coalesce(u.credits_used, 0) AS credits_used
        FROM tenant t LEFT JOIN tenant_usage u ON u.tenant = t.id AND u.month = {{}}
        {"WHERE t.name = {}" if tenant_name is not None else ""} ORDER BY t.name
        """,
        month_of(datetime.now(UTC)),
        *([tenant_name.strip()] if tenant_name is not None else []),
    )
    if tenant_name is not None and not rows:
        raise NotFound(f"no tenant named {tenant_name!r}")
    return [(row["name"], _usage(row)) for row in rows]
