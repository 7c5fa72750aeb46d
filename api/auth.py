"""Bearer API keys: every /api/v2 route needs one, unless its handler opts out."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from store.tenants import authenticate

# Handlers marked with this opt key are public (health, the spec's unauthenticated telemetry).
PUBLIC = "exclude_from_auth"


class ApiKeyAuth(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise NotAuthorizedException("missing API key: send Authorization: Bearer <key>")
        tenant = await authenticate(key.strip())
        if tenant is None:
            raise NotAuthorizedException("invalid or revoked API key")
        return AuthenticationResult(user=tenant, auth=None)
