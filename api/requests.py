"""The request class of the app: a JSON body nested deeper than the decoder can follow (msgspec stops at the
interpreter's recursion limit) is the client's malformed request, not a server error."""

from __future__ import annotations

from typing import Any

from litestar import Request

from store.errors import MalformedRequest


class ApiRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise MalformedRequest("the JSON body is nested too deeply") from None
