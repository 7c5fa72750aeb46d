"""A session's progress over a websocket: the steps of its files as they end (announced with Postgres NOTIFY from
the job queue's transactions) and its cancellation; only the session's own tenant may follow it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import websockets

from store import jobs, sessions
from store.tenants import create_key, ensure_tenant, revoke_key
from tests.support.callers import Caller, new_caller
from tests.support.file_rows import insert_file
from tests.support.served import served

pytestmark = pytest.mark.integration


def ws_url(server: str, channel: str) -> str:
    return f"{server.replace('http://', 'ws://')}/api/v2/files/ws/{channel}"


async def session_of_two(caller: Caller, step: str) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A session of two documents whose text is under way, each with a queued job of `step` (run by no engine)."""
    names = ("one.txt", "two.txt")
    files = [
        await insert_file(caller.tenant_id, name, text_extraction_status="queued", embedding_status="skipped")
        for name in names
    ]
    for file_id in files:
        await jobs.enqueue(file_id, caller.tenant_id, step)
    session_id = uuid.uuid4()
    entries = [sessions.SessionFile(name, sessions.ACCEPTED, file) for name, file in zip(names, files, strict=True)]
    await sessions.create(session_id, caller.tenant_id, "streaming", datetime.now(UTC), entries)
    return session_id, files


async def next_message(socket) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout=10))


async def test_the_steps_of_a_sessions_files_arrive_as_they_end(server, http, database) -> None:
    alice = await new_caller()
    step = f"progress-test-{uuid.uuid4().hex[:6]}"
    session_id, (first, second) = await session_of_two(alice, step)

    async with websockets.connect(ws_url(server, f"batch.{session_id}"), additional_headers=alice.headers) as socket:
        await asyncio.sleep(0.5)  # the API's LISTEN is in place once the socket is accepted; give it a moment
        [job] = await jobs.claim("test-worker", "interactive", 1, 60, [step])
        assert await jobs.complete(job.id, "test-worker", {"text_extraction_status": "completed"})
        done = await next_message(socket)
        assert done == {
            "event": "file_step",
            "session_id": str(session_id),
            "file_id": str(first),
            "filename": "one.txt",
            "step": step,
            "outcome": "completed",
            "file_status": "completed",
            "total_files": 2,
            "pending_files": 1,
        }
        [job] = await jobs.claim("test-worker", "interactive", 1, 60, [step])
        changes = {"text_extraction_status": "failed"}
        outcome = await jobs.fail(job.id, "test-worker", "corrupt", retryable=False, final_file_changes=changes)
        assert outcome == "failed"
        failed = await next_message(socket)
        assert (failed["file_id"], failed["outcome"], failed["file_status"]) == (str(second), "failed", "failed")
        assert failed["pending_files"] == 0
    status = (await http.get(f"/api/v2/files/sessions/{session_id}/status", headers=alice.headers)).json()
    assert (status["status"], status["completed_files"], status["failed_files"]) == ("completed", 1, 1)
    assert [error["file_id"] for error in status["recent_errors"]] == [str(second)]


async def test_cancelling_is_announced(server, http, database) -> None:
    alice = await new_caller()
    session_id, _ = await session_of_two(alice, f"progress-test-{uuid.uuid4().hex[:6]}")
    async with websockets.connect(ws_url(server, f"batch.{session_id}"), additional_headers=alice.headers) as socket:
        await asyncio.sleep(0.5)
        cancelled = await http.post(f"/api/v2/files/sessions/{session_id}/cancel", headers=alice.headers)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["websocket_channel"] == f"batch.{session_id}"
        assert await next_message(socket) == {"event": "session_cancelled", "session_id": str(session_id)}


@pytest.mark.parametrize("channel", ["batch.{session}", "batch.not-a-uuid", "other.{session}", "batch.{unknown}"])
async def test_only_the_sessions_tenant_may_follow_it(server, database, channel) -> None:
    alice, bob = await new_caller(), await new_caller()
    session_id, _ = await session_of_two(alice, f"progress-test-{uuid.uuid4().hex[:6]}")
    name = channel.format(session=session_id, unknown=uuid.uuid4())
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:  # closed before it is accepted
        async with websockets.connect(ws_url(server, name), additional_headers=bob.headers):
            pass
    assert refused.value.response.status_code == 403


async def test_a_socket_needs_a_key(server, database) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(ws_url(server, f"batch.{uuid.uuid4()}")):
            pass
    assert refused.value.response.status_code in (401, 403)


@pytest.fixture(scope="module")
async def rechecking_server(services, database) -> AsyncIterator[str]:
    async with served(services.replace(api__key_recheck_seconds=0.3)) as url:
        yield url


async def test_a_revoked_key_closes_the_sockets_it_opened(rechecking_server) -> None:
    alice = await new_caller()
    other_key = await create_key(await ensure_tenant(alice.name))
    session_id, _ = await session_of_two(alice, f"progress-test-{uuid.uuid4().hex[:6]}")
    url = ws_url(rechecking_server, f"batch.{session_id}")
    async with (
        websockets.connect(url, additional_headers=alice.headers) as revoked,
        websockets.connect(url, additional_headers={"Authorization": f"Bearer {other_key}"}) as kept,
    ):
        await asyncio.sleep(1)  # checks pass while the key holds
        await revoke_key(alice.key)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(revoked.recv(), timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        await asyncio.sleep(1)
        await asyncio.wait_for(await kept.ping(), timeout=5)  # the tenant's other key keeps its socket
