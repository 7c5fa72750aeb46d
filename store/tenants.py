"""Tenants and their API keys. A key is shown once and only its SHA-256 is stored: keys are
long random tokens, so a fast hash is enough (no password stretching needed). A key may expire, and records
when it was last used, to the minute: a write per request would cost more than the request."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from store.errors import InvalidInput, NotFound
from store.tables import ApiKey, Tenant

TIERS = ("free", "starter", "professional", "enterprise")
_KEY_PREFIX = "sk"
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TenantRef:
    """Who is calling: the authenticated tenant."""

    id: uuid.UUID
    name: str
    tier: str


@dataclass(frozen=True)
class KeyInfo:
    """What an operator may see of a key: never its secret or its hash."""

    id: uuid.UUID
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str | None:
    """The key's public prefix, or None when the key is not shaped like one of ours."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != _KEY_PREFIX or len(parts[1]) != 12:
        return None
    return parts[1]


async def ensure_tenant(name: str, tier: str | None = None) -> TenantRef:
    """Find the tenant by name or create it; a given tier is applied either way."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("must be 1-100 characters", field="tenant")
    if tier is not None and tier not in TIERS:
        raise InvalidInput(f"must be one of {', '.join(TIERS)}", field="tier")
    now = datetime.now(UTC)
    await Tenant.raw(
        "INSERT INTO tenant (id, name, tier, created_at) VALUES ({}, {}, {}, {}) ON CONFLICT (name) DO NOTHING",
        uuid.uuid4(),
        name,
        tier or "free",
        now,
    )
    if tier is not None:
        await Tenant.update({Tenant.tier: tier}).where(Tenant.name == name)
    row = await Tenant.select().where(Tenant.name == name).first()
    assert row is not None
    return TenantRef(id=row["id"], name=row["name"], tier=row["tier"])


async def set_tier(name: str, tier: str) -> TenantRef:
    """Move an existing tenant to another tier; its new limits hold from its next request."""
    if tier not in TIERS:
        raise InvalidInput(f"must be one of {', '.join(TIERS)}", field="tier")
    rows = await Tenant.update({Tenant.tier: tier}).where(Tenant.name == name.strip()).returning(Tenant.id, Tenant.name)
    if not rows:
        raise NotFound(f"no tenant named {name!r}")
    return TenantRef(id=rows[0]["id"], name=rows[0]["name"], tier=tier)


async def create_key(tenant: TenantRef, expires_in: timedelta | None = None) -> str:
    """A new key for the tenant, valid for `expires_in` (None: until revoked); the clear key is returned once and
    never stored."""
    prefix = secrets.token_hex(6)
    key = f"{_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    await ApiKey.insert(
        ApiKey(
            id=uuid.uuid4(),
            tenant=tenant.id,
            prefix=prefix,
            key_hash=_hash(key),
            created_at=(now := datetime.now(UTC)),
            expires_at=None if expires_in is None else now + expires_in,
        )
    )
    return key


async def revoke_key(prefix: str) -> None:
    prefix = prefix.removeprefix(f"{_KEY_PREFIX}_")[:12]
    updated = (
        await ApiKey.update({ApiKey.revoked_at: datetime.now(UTC)})
        .where((ApiKey.prefix == prefix) & ApiKey.revoked_at.is_null())
        .returning(ApiKey.id)
    )
    if not updated:
        raise NotFound(f"no active key with prefix {prefix!r}")


async def list_keys(tenant_name: str) -> list[KeyInfo]:
    """The tenant's keys, revoked and expired ones included, oldest first."""
    tenant = await Tenant.select(Tenant.id).where(Tenant.name == tenant_name.strip()).first()
    if tenant is None:
        raise NotFound(f"no tenant named {tenant_name!r}")
    rows = (
        await ApiKey.select(
            ApiKey.id, ApiKey.prefix, ApiKey.created_at, ApiKey.last_used_at, ApiKey.expires_at, ApiKey.revoked_at
        )
        .where(ApiKey.tenant == tenant["id"])
        .order_by(ApiKey.created_at)
    )
    return [KeyInfo(**row) for row in rows]


async def authenticate(key: str) -> TenantRef | None:
    """The tenant owning an active, unexpired key, or None."""
    prefix = key_prefix(key)
    if prefix is None:
        return None
    row = (
        await ApiKey.select(
            ApiKey.id,
            ApiKey.key_hash,
            ApiKey.expires_at,
            ApiKey.last_used_at,
            ApiKey.tenant.id,
            ApiKey.tenant.name,
            ApiKey.tenant.tier,
        )
        .where((ApiKey.prefix == prefix) & ApiKey.revoked_at.is_null())
        .first()
    )
    if row is None or not hmac.compare_digest(row["key_hash"], _hash(key)):
        return None
    now = datetime.now(UTC)
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return None
    if row["last_used_at"] is None or now - row["last_used_at"] >= LAST_USED_RESOLUTION:
        await _touch(row["id"], now)
    return TenantRef(id=row["tenant.id"], name=row["tenant.name"], tier=row["tenant.tier"])


async def _touch(key_id: uuid.UUID, now: datetime) -> None:
    """Record a use; the condition keeps concurrent requests of one key to one write a minute."""
    await ApiKey.update({ApiKey.last_used_at: now}).where(
        (ApiKey.id == key_id) & (ApiKey.last_used_at.is_null() | (ApiKey.last_used_at <= now - LAST_USED_RESOLUTION))
    )


async def find_tenant(ref: str) -> TenantRef:
    """The tenant named `ref`, or whose id it is (operators' commands); NotFound otherwise."""
    try:
        condition = Tenant.id == uuid.UUID(ref)
    except ValueError:
        condition = Tenant.name == ref.strip()
    row = await Tenant.select().where(condition).first()
    if row is None:
        raise NotFound(f"no tenant {ref!r}")
    return TenantRef(id=row["id"], name=row["name"], tier=row["tier"])
