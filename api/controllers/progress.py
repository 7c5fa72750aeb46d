"""`ws /api/v2/files/ws/batch.{session_id}`: an upload session's progress as it happens, one JSON message per
step of its files that ends (store/sessions.announce: the file's status, the session's pending and total files)
and one when the session is cancelled. Authenticated like every route; a channel of another tenant's session, or
no session's, is refused (HTTP 403) before the socket is accepted. An open socket re-checks its key every
`api.key_recheck_seconds` and is closed (4401) once the key is revoked."""

from __future__ import annotations

import asyncio
import uuid

from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

from api.auth import bearer_key
from api.deps import AppSettings, Tenant
from store import sessions
from store.errors import NotFound
from store.tenants import authenticate

_PREFIX = "batch."
_POLICY_VIOLATION = 1008  # the WebSocket close code for a refused subscription
_KEY_REVOKED = 4401  # an application close code: HTTP's 401 once the socket is open


@websocket("/api/v2/files/ws/{channel:str}")
async def session_progress(
    socket: WebSocket,
    tenant: Tenant,
    settings: AppSettings,
    channel: FromPath[str],
    channels: NamedDependency[ChannelsPlugin],
) -> None:
    try:
        session_id = uuid.UUID(channel.removeprefix(_PREFIX)) if channel.startswith(_PREFIX) else None
        if session_id is None:
            raise NotFound(f"no channel {channel!r}")
        await sessions.summary(tenant.id, session_id)  # NotFound for another tenant's session
    except (ValueError, NotFound):
        await socket.close(code=_POLICY_VIOLATION, reason="no such upload session")
        return
    await socket.accept()
    async with (
        channels.start_subscription([sessions.progress_channel(session_id)]) as subscriber,
        subscriber.run_in_background(socket.send_text),
    ):
        client_gone = asyncio.create_task(_until_gone(socket))
        key_revoked = asyncio.create_task(_until_revoked(bearer_key(socket) or "", settings.api.key_recheck_seconds))
        done, pending = await asyncio.wait({client_gone, key_revoked}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if key_revoked in done:
            key_revoked.result()  # a check that failed (the database away) is an error, not a revocation
            await socket.close(code=_KEY_REVOKED, reason="the API key was revoked")


async def _until_gone(socket: WebSocket) -> None:
    try:
        while True:
            await socket.receive_text()  # until the client goes away (what it sends is ignored)
    except WebSocketDisconnect:
        return


async def _until_revoked(key: str, every_seconds: float) -> None:
    while True:
        await asyncio.sleep(every_seconds)
        if await authenticate(key) is None:
            return
