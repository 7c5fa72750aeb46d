"""Headers every API response carries, whatever route, error or middleware produced it."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope


async def nosniff(message: Message, scope: Scope) -> None:
    """A before-send hook: browsers take our Content-Type as given and never guess a script or page from the
    bytes (an error echoing a filename stays JSON)."""
    if message["type"] == "http.response.start":
        MutableScopeHeaders.from_message(message)["X-Content-Type-Options"] = "nosniff"
