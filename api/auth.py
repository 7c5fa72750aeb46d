"""Bearer API keys: every /api/v2 route needs one, unless its handler opts out; a key past its request rate (per
replica, api/rate_limit.py) is answered 429 with Retry-After before its request is read."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.rate_limit import RateLimiter
from store.tenants import authenticate, key_prefix

# Handlers marked with this opt key are public (health, the spec's unauthenticated telemetry).
PUBLIC = "exclude_from_auth"


API_PREFIX = "/api/v2/"
MISSING_KEY = "missing API key: send Authorization: Bearer <key>"
BAD_KEY = "invalid or revoked API key"


def bearer_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The API key of an `Authorization: Bearer <key>` header, if the connection sent one."""
    scheme, _, key = connection.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


class ApiKeyAuth(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        key = bearer_key(connection)
        if key is None:
            raise NotAuthorizedException(MISSING_KEY)
        tenant = await authenticate(key)
        if tenant is None:
            raise NotAuthorizedException(BAD_KEY)
        limiter: RateLimiter = connection.app.state.key_limiter
        wait = limiter.take(key_prefix(key) or key)
        if wait:
            raise TooManyRequestsException(
                "too many requests for this API key; retry later", headers={"Retry-After": str(wait)}
            )
        return AuthenticationResult(user=tenant, auth=None)


class UnroutedAuth:
    """Litestar routes a request before any middleware runs, so a path or method no handler takes would answer its
    404 or 405 to anyone, telling a caller without a key which routes exist. Wrapped around the app's handler, this
    turns those answers under /api/v2 into the 401 every route gives a missing or bad key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        refused = False

        async def guarded(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] in (404, 405) and "user" not in scope:
                refused = (detail := await _key_problem(scope)) is not None
                if refused:
                    await _send_401(send, detail or "")
                    return
            if not refused:
                await send(message)

        await self.app(scope, receive, guarded)


async def _key_problem(scope: Scope) -> str | None:
    """Why the request's key is refused, or None when it is a tenant's active key."""
    key = bearer_key(ASGIConnection(scope))
    if key is None:
        return MISSING_KEY
    return None if await authenticate(key) is not None else BAD_KEY


async def _send_401(send: Send, detail: str) -> None:
    body = msgspec.json.encode({"detail": detail, "code": "unauthorized", "status_code": 401})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b"Bearer"),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
