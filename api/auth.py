"""Bearer API keys: every /api/v2 route needs one, unless its handler opts out."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from store.tenants import authenticate

# Handlers marked with this opt key are public (health, the spec's unauthenticated telemetry).
PUBLIC = "exclude_from_auth"


def bearer_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The API key of an `Authorization: Bearer <key>` header, if the connection sent one."""
    scheme, _, key = connection.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


class ApiKeyAuth(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        key = bearer_key(connection)
        if key is None:
            raise NotAuthorizedException("missing API key: send Authorization: Bearer <key>")
        tenant = await authenticate(key)
        if tenant is None:
            raise NotAuthorizedException("invalid or revoked API key")
        return AuthenticationResult(user=tenant, auth=None)
