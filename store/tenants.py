"""Tenants and their API keys. A key is shown once and only its SHA-256 is stored: keys are
long random tokens, so a fast hash is enough (no password stretching needed)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from store.errors import InvalidInput, NotFound
from store.tables import ApiKey, Tenant

TIERS = ("free", "starter", "professional", "enterprise")
_KEY_PREFIX = "sk"


@dataclass(frozen=True)
class TenantRef:
    """Who is calling: the authenticated tenant."""

    id: uuid.UUID
    name: str
    tier: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _split(key: str) -> str | None:
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


async def create_key(tenant: TenantRef) -> str:
    """A new key for the tenant; the clear key is returned once and never stored."""
    prefix = secrets.token_hex(6)
    key = f"{_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    await ApiKey.insert(
        ApiKey(
            id=uuid.uuid4(),
            tenant=tenant.id,
            prefix=prefix,
            key_hash=_hash(key),
            created_at=datetime.now(UTC),
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


async def authenticate(key: str) -> TenantRef | None:
    """The tenant owning an active key, or None."""
    prefix = _split(key)
    if prefix is None:
        return None
    row = (
        await ApiKey.select(ApiKey.key_hash, ApiKey.tenant.id, ApiKey.tenant.name, ApiKey.tenant.tier)
        .where((ApiKey.prefix == prefix) & ApiKey.revoked_at.is_null())
        .first()
    )
    if row is None or not hmac.compare_digest(row["key_hash"], _hash(key)):
        return None
    return TenantRef(id=row["tenant.id"], name=row["tenant.name"], tier=row["tenant.tier"])
