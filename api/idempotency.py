"""The `Idempotency-Key` header of a POST route: a client that sends a key may send the same request again (after a
timeout, a lost connection) and get the first answer, same status and body, without the work being done twice.

- Keys are per tenant, 1-128 characters of [A-Za-z0-9_.-] (anything else is a 422), kept 24 h (store/
  idempotency_keys.py; `api.idempotency_hours`); an older key is new again.
- The same key with another body, or on another route, is a 422: the key names one request.
- While the first request works, a second one with its key is a 409 `idempotency_key_in_progress`, to retry later:
  the claim is a row written before the work starts, so replicas racing on one key never both do it. A claim whose
  request died unanswered is free again after `api.idempotency_claim_seconds`.
- Only final answers are replayed: every 2xx, and the 4xx refusals the route names as final (the same request could
  only be refused the same way). Other refusals (a part still missing, a quota) and every 5xx free the key, so the
  client may retry with it once the cause is gone.

A route adopts it by running its work through `idempotent`, with its scope (method and path) and its decoded body."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeAlias

import msgspec
from litestar import MediaType, Response
from litestar.params import HeaderParameter

from api.errors import error_response, status_of
from store import idempotency_keys
from store.errors import Conflict, DomainError, InvalidInput
from store.settings import Settings
from store.tenants import TenantRef

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"[A-Za-z0-9_.-]{1,128}")

# What a handler writes to take the header.
IdempotencyKey: TypeAlias = Annotated[
    str | None, HeaderParameter(name=HEADER, description="1-128 characters of [A-Za-z0-9_.-]; replays the first answer")
]
Final: TypeAlias = Callable[[int, str], bool]  # (status, code) of a refusal -> replayed as it was


def _never(status: int, code: str) -> bool:
    return False


async def idempotent(
    key: str | None,
    tenant: TenantRef,
    settings: Settings,
    scope: str,
    body: Any,
    work: Callable[[], Awaitable[Response[Any]]],
    final: Final = _never,
) -> Response[Any]:
    """The work's answer, done at most once per tenant and key (without a key, simply the work's answer)."""
    if key is None:
        return await work()
    if not _KEY.fullmatch(key):
        raise InvalidInput("must be 1-128 characters of A-Z, a-z, 0-9, '_', '.' and '-'", field=HEADER,
                           code="invalid_idempotency_key")  # fmt: skip
    printed = fingerprint(scope, body)
    claim_id = uuid.uuid4()
    now = datetime.now(UTC)
    held = await idempotency_keys.claim(
        tenant.id,
        key,
        scope,
        printed,
        claim_id,
        now,
        expired_before=now - timedelta(hours=settings.api.idempotency_hours),
        abandoned_before=now - timedelta(seconds=settings.api.idempotency_claim_seconds),
    )
    if held is not None:
        return _replay(held, printed)
    try:
        response = await work()
    except DomainError as exc:
        status, code = status_of(exc)
        if status < 500 and final(status, code):
            refusal = error_response(status, exc.detail, code, **exc.extra)
            return await _answer(tenant, key, claim_id, status, refusal.content)
        await idempotency_keys.give_up(tenant.id, key, claim_id)
        raise
    except BaseException:
        await idempotency_keys.give_up(tenant.id, key, claim_id)
        raise
    status = response.status_code or 200
    if not 200 <= status < 300:
        await idempotency_keys.give_up(tenant.id, key, claim_id)
        return response
    return await _answer(tenant, key, claim_id, status, response.content)


def fingerprint(scope: str, body: Any) -> str:
    """The route and the body as decoded, in a canonical JSON (keys sorted): the same request however it is
    spelled (key order, spacing, an optional field sent with its default)."""
    canonical = msgspec.json.encode(msgspec.to_builtins(body), order="sorted")
    return hashlib.sha256(scope.encode() + b"\n" + canonical).hexdigest()


def _replay(held: idempotency_keys.KeyRecord, fingerprint: str) -> Response[Any]:
    if held.fingerprint != fingerprint:
        raise InvalidInput(
            f"this key was used for another request ({held.scope}, or another body); use a new key",
            field=HEADER,
            code="idempotency_key_reused",
        )
    if held.status_code is None or held.response is None:
        raise Conflict("a request with this Idempotency-Key is in progress; retry later",
                       code="idempotency_key_in_progress", retry_after=1)  # fmt: skip
    return _json(held.status_code, held.response, {REPLAYED_HEADER: "true"})


async def _answer(tenant: TenantRef, key: str, claim_id: uuid.UUID, status: int, content: Any) -> Response[Any]:
    """Store the answer, then send exactly the bytes stored, so that the first answer and its replays are equal."""
    encoded = msgspec.json.encode(content)
    await idempotency_keys.answer(tenant.id, key, claim_id, status, encoded)
    return _json(status, encoded)


def _json(status: int, encoded: bytes, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(encoded, status_code=status, media_type=MediaType.JSON, headers=headers)
