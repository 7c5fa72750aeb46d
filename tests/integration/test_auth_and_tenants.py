"""Every /api/v2 route needs a valid key, and tenants never see each other's files."""

from __future__ import annotations

import pytest

from tests.support import sample_files
from tests.support.api_calls import listing, upload, uploaded

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer sk_000000000000_nope"}],
)
async def test_missing_or_bad_keys_are_401_json(client, headers):
    for method, path in (("GET", "/api/v2/files"), ("POST", "/api/v2/files/upload"), ("GET", "/api/v2/files/abc")):
        response = await client.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.json()["code"] == "unauthorized"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer sk_000000000000_nope"}])
async def test_a_missing_or_bad_key_is_401_before_405_or_404(client, headers):
    for method, path in (
        ("PUT", "/api/v2/files/direct-uploads"),
        ("PATCH", "/api/v2/files/upload"),
        ("GET", "/api/v2/no-such-route"),
    ):
        response = await client.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_valid_key_gets_the_405(client, alice):
    response = await client.request("PUT", "/api/v2/files/direct-uploads", headers=alice.headers)
    assert response.status_code == 405


async def test_revoked_key_stops_working(client):
    from store.tenants import revoke_key
    from tests.support.callers import new_caller

    caller = await new_caller()
    assert (await client.get("/api/v2/files", headers=caller.headers)).status_code == 200
    await revoke_key(caller.key.split("_")[1])
    assert (await client.get("/api/v2/files", headers=caller.headers)).status_code == 401


async def test_keys_are_stored_hashed(database):
    from store.tables import ApiKey
    from tests.support.callers import new_caller

    caller = await new_caller()
    rows = await ApiKey.select(ApiKey.key_hash, ApiKey.prefix).where(ApiKey.tenant == caller.tenant_id)
    assert len(rows) == 1
    assert caller.key not in str(rows) and rows[0]["key_hash"] != caller.key
    assert len(rows[0]["key_hash"]) == 64


async def test_telemetry_needs_no_key_and_is_validated(client):
    ok = await client.post(
        "/api/v2/files/log-upload-event",
        json={"event_type": "upload_retry", "message": "chunk 5 failed", "data": {"part": 5}},
    )
    assert ok.status_code == 200 and ok.json()["status"] == "logged"
    too_big = await client.post(
        "/api/v2/files/log-upload-event", json={"event_type": "x", "message": "y", "data": {"blob": "z" * 11_000}}
    )
    assert too_big.status_code == 422
    long_type = await client.post("/api/v2/files/log-upload-event", json={"event_type": "x" * 101, "message": "y"})
    assert long_type.status_code in (400, 422)


async def test_health_reports_ok(client):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "s3": "ok", "status": "ok"}


async def test_other_tenants_files_do_not_exist_on_any_route(client, alice, bob):
    content = sample_files.image("PNG", color=(4, 5, 6))
    file_id = await uploaded(client, alice, content, "alice.png")
    url = f"/api/v2/files/{file_id}"
    for response in (
        await client.get(url, headers=bob.headers),
        await client.get(f"/api/v2/files/{file_id[:8]}", headers=bob.headers),
        await client.get(f"{url}/download", headers=bob.headers),
        await client.patch(url, headers=bob.headers, json={"title": "mine now"}),
        await client.delete(url, headers=bob.headers),
        await client.post(f"{url}/restore", headers=bob.headers),
    ):
        assert response.status_code == 404, response.request.url
        assert response.json()["code"] == "not_found"
    assert (await listing(client, bob))["total_count"] == 0
    assert (await listing(client, bob, ids=[file_id]))["total_count"] == 0
    # The same bytes are not a duplicate for another tenant.
    skipped = (await upload(client, bob, content, "bob.png", skip_duplicates=True)).json()
    assert skipped["skipped"] is False and skipped["file_id"] != file_id
    detail = (await client.get(url, headers=alice.headers)).json()
    assert detail["title"] is None  # bob's patch changed nothing
