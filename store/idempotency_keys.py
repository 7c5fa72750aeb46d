"""Idempotency keys: per tenant, the first answer to a request sent with a key, so that a replay gets that answer
instead of doing the work again. A request first claims its key with a row that has no answer yet (one INSERT: of
two racing requests, one wins, the other sees the claim); it then stores its answer, or gives the key up when its
answer must not be replayed. Rows live in Postgres so that every API replica sees them."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from store.tables import Tenant


class KeyRecord(msgspec.Struct, frozen=True):
    """A key already in use: by which route and body (fingerprint), and its answer once there is one."""

    scope: str
    fingerprint: str
    status_code: int | None  # None: the first request is still working
    response: bytes | None


async def claim(
    tenant_id: uuid.UUID,
    key: str,
    scope: str,
    fingerprint: str,
    claim_id: uuid.UUID,
    now: datetime,
    expired_before: datetime,
    abandoned_before: datetime,
) -> KeyRecord | None:
    """Claim the key for this request (None), or the record of the request that holds it. A key used before
    `expired_before`, or claimed before `abandoned_before` by a request that never answered (its process died), is
    taken over as new."""
    for _ in range(3):  # the holder may give the key up between the INSERT and the SELECT: claim again
        won = await Tenant.raw(
            """
            INSERT INTO idempotency_key (tenant, key, scope, fingerprint, claim, created_at)
            VALUES ({}, {}, {}, {}, {}, {})
            ON CONFLICT (tenant, key) DO UPDATE SET scope = EXCLUDED.scope, fingerprint = EXCLUDED.fingerprint,
                claim = EXCLUDED.claim, status_code = NULL, response = NULL, created_at = EXCLUDED.created_at
            WHERE idempotency_key.created_at < {}
                OR (idempotency_key.status_code IS NULL AND idempotency_key.created_at < {})
            RETURNING claim
            """,
            tenant_id,
            key,
            scope,
            fingerprint,
            claim_id,
            now,
            expired_before,
            abandoned_before,
        )
        if won:
            return None
        held = await Tenant.raw(
            "SELECT scope, fingerprint, status_code, response FROM idempotency_key WHERE tenant = {} AND key = {}",
            tenant_id,
            key,
        )
        if held:
            return msgspec.convert(dict(held[0]), KeyRecord)
    raise RuntimeError(f"idempotency key {key!r} kept changing hands")


async def answer(tenant_id: uuid.UUID, key: str, claim_id: uuid.UUID, status_code: int, response: bytes) -> None:
    """Store the answer of the request that holds the claim (a claim taken over meanwhile keeps its own)."""
    await Tenant.raw(
        "UPDATE idempotency_key SET status_code = {}, response = {} WHERE tenant = {} AND key = {} AND claim = {}",
        status_code,
        response,
        tenant_id,
        key,
        claim_id,
    )


async def give_up(tenant_id: uuid.UUID, key: str, claim_id: uuid.UUID) -> None:
    """Free the key of a request whose answer is not replayed (a server error, a refusal that may change)."""
    await Tenant.raw(
        "DELETE FROM idempotency_key WHERE tenant = {} AND key = {} AND claim = {} AND status_code IS NULL",
        tenant_id,
        key,
        claim_id,
    )


async def purge(before: datetime) -> int:
    """Delete the keys used before `before` (expired); how many."""
    rows = await Tenant.raw("DELETE FROM idempotency_key WHERE created_at < {} RETURNING key", before)
    return len(rows)
