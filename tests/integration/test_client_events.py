"""The unauthenticated client telemetry: one escaped log record per event, bounded nesting and sizes, and a
rate limit per client address."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

pytestmark = pytest.mark.integration

ROUTE = "/api/v2/files/log-upload-event"


def _nested(depth: int) -> dict:
    data: dict = {"leaf": 1}
    for _ in range(depth - 1):
        data = {"a": data}
    return data


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


async def test_a_newline_in_the_message_cannot_forge_a_log_line(client, caplog):
    forged = "upload ok\n2026-12-02 23:00:00,000 CRITICAL scopix.auth: admin key leaked"
    with caplog.at_level(logging.INFO, logger="scopix.client_events"):
        response = await client.post(ROUTE, json={"event_type": "retry\r\nx", "message": forged, "data": {"k": "\n"}})
    assert response.status_code == 200, response.text
    [record] = [record for record in caplog.records if record.name == "scopix.client_events"]
    line = record.getMessage()
    assert "\n" not in line and "\r" not in line
    assert "upload ok\\n2026-12-02 23:00:00,000 CRITICAL" in line  # escaped, on the event's own line
    assert record.event["message"] == forged  # and whole, for a structured handler


async def test_deeply_nested_data_is_422_and_shallow_is_logged(client):
    assert (await client.post(ROUTE, json={"event_type": "x", "message": "y", "data": _nested(8)})).status_code == 200
    deep_objects = b'{"a": ' * 5000 + b"1" + b"}" * 5000
    deep_arrays = b"[" * 30_000 + b"]" * 30_000  # past the decoder's recursion limit
    for data in (_json(_nested(9)), deep_objects, deep_arrays):
        raw = b'{"event_type": "x", "message": "y", "data": ' + data + b"}"
        response = await client.post(ROUTE, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "data"


async def test_sizes_are_bounded(client):
    for body in (
        {"event_type": "x", "message": "m" * 2001},
        {"event_type": "x", "message": "y", "data": {"blob": "z" * 11_000}},
        {"event_type": "x", "message": "y", "session_id": "s" * 101},
    ):
        assert (await client.post(ROUTE, json=body)).status_code == 422
    huge = await client.post(ROUTE, json={"event_type": "x", "message": "y", "data": {"a": "b" * 70_000}})
    assert huge.status_code == 413


async def test_events_past_the_rate_are_429_with_retry_after(services, database, tmp_path):
    """A `scopix serve` of its own, on the session's database and S3, with a small burst."""
    from store.settings import environment
    from tests.support.scopix_command import Server, scopix_env

    limited = services.replace(client_events__burst=3, client_events__per_minute=6, engine__serve=False)
    server = Server(tmp_path, scopix_env(**environment(limited)))
    event = {"event_type": "x", "message": "y"}
    try:
        async with httpx.AsyncClient(base_url=server.base) as http:
            assert [(await http.post(ROUTE, json=event)).status_code for _ in range(3)] == [200] * 3
            refused = await http.post(ROUTE, json=event)
            assert refused.status_code == 429 and refused.json()["code"] == "too_many_requests"
            assert 1 <= int(refused.headers["retry-after"]) <= 10
            deep = b'{"data": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
            refused_unread = await http.post(ROUTE, content=deep, headers={"content-type": "application/json"})
            assert refused_unread.status_code == 429  # refused before its body is read
            assert (await http.get("/health")).status_code == 200  # only the telemetry is limited
    finally:
        server.stop()
