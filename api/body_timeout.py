"""A request body that stops arriving ends its request. uvicorn's h11 waits for body bytes forever, so a client
that opens an upload and then sends nothing (slowloris) would hold its connection, its request task and its S3
multipart upload for as long as it likes; here every wait for the next body message is bounded, and the route
sees `TimedOut` (a 408) where it reads the body, so an upload aborts what it had written, as on any failure."""

from __future__ import annotations

import asyncio

from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from store.errors import TimedOut


class BodyIdleTimeout:
    """ASGI middleware: `seconds` is the longest wait for the next piece of a request's body."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, _bounded(receive, self.seconds), send)


def _bounded(receive: Receive, seconds: float) -> Receive:
    """`receive` with each body message awaited for at most `seconds`; once the body is complete, waits (for the
    client's disconnect) are the app's own business."""
    complete = False

    async def bounded() -> ReceiveMessage:
        nonlocal complete
        if complete:
            return await receive()
        try:
            async with asyncio.timeout(seconds):
                message = await receive()
        except TimeoutError:
            raise TimedOut(f"the request body stalled: nothing arrived for {seconds:g} seconds") from None
        complete = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return bounded
