"""`ws /api/v2/files/ws/batch.{session_id}`: an upload session's progress as it happens, one JSON message per
step of its files that ends (store/sessions.announce: the file's status, the session's pending and total files)
and one when the session is cancelled. Authenticated like every route; a channel of another tenant's session, or
no session's, is refused (HTTP 403) before the socket is accepted."""

from __future__ import annotations

import uuid

from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

from api.deps import Tenant
from store import sessions
from store.errors import NotFound

_PREFIX = "batch."
_POLICY_VIOLATION = 1008  # the WebSocket close code for a refused subscription


@websocket("/api/v2/files/ws/{channel:str}")
async def session_progress(
    socket: WebSocket, tenant: Tenant, channel: FromPath[str], channels: NamedDependency[ChannelsPlugin]
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
        try:
            while True:
                await socket.receive_text()  # until the client goes away (what it sends is ignored)
        except WebSocketDisconnect:
            return
