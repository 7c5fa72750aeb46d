"""Quotas, prepaid credits and backpressure against the real Postgres and S3: what counts, what is refused (storing
nothing), a video's reserved credits, races between transactions, uploads in flight and a key's request rate."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support import sample_files
from tests.support.api_calls import listing, upload
from tests.support.callers import Caller, new_caller
from tests.support.direct_uploads import ROUTE, complete, intent, put_single
from tests.support.quotas import set_used, standing
from tests.support.served import served
from tests.support.stored_objects import assert_nothing_stored, pending_multipart, stored_keys

pytestmark = pytest.mark.integration
QUOTA_CHECK = "/api/v2/files/quota-check"
SPEC_QUOTA_CHECK = {
    "can_proceed",
    "requested",
    "available",
    "monthly_limit",
    "current_usage",
    "prepaid_credits",
    "max_batch_size",
    "max_concurrent_uploads",
    "message",
}


@pytest.fixture
async def free(database: None) -> Caller:
    return await new_caller("free")


def note(n: int) -> bytes:
    return sample_files.TEXT + f" note {n}".encode()


async def quota_check(client: httpx.AsyncClient, caller: Caller, file_count: int) -> dict:
    response = await client.get(QUOTA_CHECK, headers=caller.headers, params={"file_count": file_count})
    assert response.status_code == 200, response.text
    return response.json()


async def test_quota_check_answers_the_spec_body(client, free, alice):
    body = await quota_check(client, free, 10)
    assert set(body) == SPEC_QUOTA_CHECK
    assert body == {
        "can_proceed": True,
        "requested": 10,
        "available": 100,
        "monthly_limit": 100,
        "current_usage": 0,
        "prepaid_credits": 0,
        "max_batch_size": 10,
        "max_concurrent_uploads": 2,
        "message": None,
    }
    await set_used(free, 95, credits=3)
    short = await quota_check(client, free, 10)
    assert not short["can_proceed"] and short["available"] == 8 and short["current_usage"] == 95
    assert "2 short" in short["message"]
    unlimited = await quota_check(client, alice, 100_000)
    assert unlimited["can_proceed"] and unlimited["monthly_limit"] == -1 and unlimited["available"] == -1
    for bad in ("0", "-1", "many"):
        response = await client.get(QUOTA_CHECK, headers=free.headers, params={"file_count": bad})
        assert response.status_code == 422 and response.json()["code"] == "validation_error", response.text
    assert (await client.get(QUOTA_CHECK, headers=free.headers)).status_code == 400  # missing


async def test_files_use_the_quota_then_credits_and_a_skipped_duplicate_nothing(client, blobs, free):
    await set_used(free, 98, credits=1)
    first = await upload(client, free, note(1), "a.txt")
    assert first.status_code == 201, first.text
    assert await standing(free) == (99, 1)
    again = await upload(client, free, note(1), "again.txt", skip_duplicates=True)
    assert again.status_code == 201 and again.json()["skipped"], again.text
    assert await standing(free) == (99, 1)
    assert (await upload(client, free, note(2), "b.txt")).status_code == 201  # the month's last
    assert (await upload(client, free, note(3), "c.txt")).status_code == 201  # the prepaid credit
    assert await standing(free) == (101, 0)
    refused = await upload(client, free, note(4), "d.txt")
    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert body["code"] == "quota_exceeded" and body["shortfall"] == 1 and "1 short" in body["detail"]
    assert len(await stored_keys(blobs, free)) == 3 and (await listing(client, free))["total_count"] == 3
    assert await standing(free) == (101, 0)


async def test_a_batch_beyond_the_quota_stores_nothing(client, blobs, free):
    await set_used(free, 98)
    files = [("files", (f"{n}.txt", note(n), "text/plain")) for n in range(3)]
    refused = await client.post("/api/v2/files/upload/batch", headers=free.headers, files=files)
    assert refused.status_code == 403, refused.text
    assert refused.json()["requested"] == 3 and refused.json()["shortfall"] == 1
    await assert_nothing_stored(client, blobs, free)
    assert (await client.get("/api/v2/files/sessions", headers=free.headers)).json()["total_count"] == 0
    assert await standing(free) == (98, 0)
    accepted = await client.post("/api/v2/files/upload/batch", headers=free.headers, files=files[:2])
    assert accepted.status_code == 201 and await standing(free) == (100, 0)


async def test_an_intent_beyond_the_quota_stores_nothing_and_an_abort_refunds(client, blobs, free):
    await set_used(free, 100)
    body = {"filename": "big.txt", "content_type": "text/plain", "size_bytes": 12 * 1024 * 1024}
    body |= {"claimed_file_hash": "ab" * 32, "upload_mode": "multipart"}
    refused = await client.post(ROUTE, headers=free.headers, json=body)
    assert refused.status_code == 403 and refused.json()["code"] == "quota_exceeded", refused.text
    assert await pending_multipart(blobs, free) == []
    assert await _intents(free) == 0
    await set_used(free, 99)
    created = await client.post(ROUTE, headers=free.headers, json=body)
    assert created.status_code == 201, created.text
    assert await standing(free) == (100, 0)  # the intent's file, reserved
    aborted = await client.delete(f"{ROUTE}/{created.json()['upload_id']}", headers=free.headers)
    assert aborted.status_code == 200 and await standing(free) == (99, 0)
    assert await pending_multipart(blobs, free) == []


async def _intents(caller: Caller) -> int:
    from store.tables import UploadIntent

    return await UploadIntent.count().where(UploadIntent.tenant == caller.tenant_id)


async def test_a_video_reserves_two_credits_refunded_when_it_will_not_be_analysed(client, blobs, free):
    video = await client.post(
        ROUTE,
        headers=free.headers,
        json={"filename": "clip.mp4", "content_type": "video/mp4", "size_bytes": 1000, "claimed_file_hash": "ab" * 32},
    )
    assert video.status_code == 201, video.text
    assert await standing(free) == (3, 0)  # the file and its analysis
    await client.delete(f"{ROUTE}/{video.json()['upload_id']}", headers=free.headers)
    assert await standing(free) == (0, 0)
    # Claimed a video, turned out a document: the file's credit is spent, the analysis's refunded.
    content = note(7)
    created = await intent(client, free, content, "notes.mp4", content_type="video/mp4")
    assert (await put_single(created, content)).status_code == 200
    done = await complete(client, free, created["upload_id"])
    assert done.status_code == 202 and done.json()["media_type"] == "document", done.text
    assert await standing(free) == (1, 0)
    # Two uploads of the same bytes skipping duplicates: the second completes as the first's copy, spending nothing.
    twice = note(8)
    first, second = [await intent(client, free, twice, "n.txt", skip_duplicates=True) for _ in range(2)]
    assert await standing(free) == (3, 0)
    for created in (first, second):
        assert (await put_single(created, twice)).status_code == 200
    assert (await complete(client, free, first["upload_id"])).json()["deduplicated"] is False
    assert (await complete(client, free, second["upload_id"])).json()["deduplicated"] is True
    assert await standing(free) == (2, 0)


async def test_settling_a_video_keeps_or_refunds_its_credits_once(free):
    from store import quotas

    await set_used(free, 99, credits=5)
    kept, refunded = uuid.uuid4(), uuid.uuid4()
    await quotas.charge(free.tenant_id, 0, [kept, refunded])  # 1 from the month, 3 from the credits
    assert await standing(free) == (103, 2)
    assert await quotas.settle_video_reservation(refunded, succeeded=False)
    assert await standing(free) == (101, 4)  # back where they came from: credits first
    assert await quotas.settle_video_reservation(kept, succeeded=True)
    assert await standing(free) == (101, 4)
    assert not await quotas.settle_video_reservation(kept, succeeded=False)  # settled already
    assert not await quotas.settle_video_reservation(uuid.uuid4(), succeeded=True)  # never reserved
    assert await standing(free) == (101, 4)


async def test_racing_transactions_never_exceed_the_quota(free):
    from store import quotas
    from store.errors import QuotaExceeded

    await set_used(free, 95, credits=2)
    outcomes = await asyncio.gather(*(quotas.charge(free.tenant_id, 1, []) for _ in range(12)), return_exceptions=True)
    assert sum(outcome is None for outcome in outcomes) == 7
    assert all(isinstance(outcome, QuotaExceeded) for outcome in outcomes if outcome is not None)
    assert await standing(free) == (102, 0)


async def test_racing_transactions_never_exceed_the_uploads_in_flight(free):
    from store import quotas
    from store.errors import TooBusy

    outcomes = await asyncio.gather(
        *(quotas.acquire_lease(free.tenant_id, 60, retry_after=5) for _ in range(6)), return_exceptions=True
    )
    assert sum(isinstance(outcome, uuid.UUID) for outcome in outcomes) == 2  # the free tier's
    assert sum(isinstance(outcome, TooBusy) for outcome in outcomes) == 4


async def _slow_upload(client: httpx.AsyncClient, caller: Caller, go: asyncio.Event, n: int) -> httpx.Response:
    """An upload whose body stops half-way until `go` is set: it stays in flight meanwhile."""
    boundary = "slow-upload-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow{n}.txt"\r\n\r\n'

    async def body() -> AsyncIterator[bytes]:
        yield head.encode() + note(n)
        await go.wait()
        yield f" ends here\r\n--{boundary}--\r\n".encode()

    headers = {**caller.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return await client.post("/api/v2/files/upload", headers=headers, content=body())


async def _leases(caller: Caller) -> int:
    from store.tables import Tenant

    rows = await Tenant.raw("SELECT count(*) AS n FROM upload_lease WHERE tenant = {}", caller.tenant_id)
    return int(rows[0]["n"])


async def test_uploads_beyond_the_tiers_concurrency_are_429_with_retry_after(client, free):
    go = asyncio.Event()
    slow = [asyncio.create_task(_slow_upload(client, free, go, n)) for n in range(2)]
    try:
        async with asyncio.timeout(30):
            while await _leases(free) < 2:
                await asyncio.sleep(0.05)
        refused = await upload(client, free, note(9), "third.txt")
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "too_many_uploads" and int(refused.headers["retry-after"]) >= 1
        one = [("files", ("b.txt", b"b"))]
        batch = await client.post("/api/v2/files/upload/batch", headers=free.headers, files=one)
        assert batch.status_code == 429 and "retry-after" in batch.headers
        body = {"filename": "x.txt", "content_type": "text/plain", "size_bytes": 10, "claimed_file_hash": "ab" * 32}
        assert (await client.post(ROUTE, headers=free.headers, json=body)).status_code == 429
    finally:
        go.set()
        done = await asyncio.gather(*slow)
    assert [response.status_code for response in done] == [201, 201]
    assert await _leases(free) == 0
    assert (await upload(client, free, note(9), "third.txt")).status_code == 201


async def test_open_intents_hold_slots_and_a_dead_replicas_lease_expires(client, free):
    from store import quotas
    from store.errors import TooBusy
    from store.tables import Tenant

    body = {"filename": "x.txt", "content_type": "text/plain", "size_bytes": 10, "claimed_file_hash": "ab" * 32}
    first = await client.post(ROUTE, headers=free.headers, json=body)
    assert first.status_code == 201, first.text
    lease = await quotas.acquire_lease(free.tenant_id, 60, retry_after=5)
    refused = await upload(client, free, note(1), "a.txt")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "5"
    with pytest.raises(TooBusy):
        await quotas.acquire_lease(free.tenant_id, 60, retry_after=5)
    # The lease of a replica that died is no longer renewed: once past its expiry it holds nothing.
    await Tenant.raw("UPDATE upload_lease SET expires_at = now() - interval '1 second' WHERE id = {}", lease)
    assert (await upload(client, free, note(1), "a.txt")).status_code == 201
    await client.delete(f"{ROUTE}/{first.json()['upload_id']}", headers=free.headers)


async def test_a_key_past_its_request_rate_is_429_before_anything_else(services, database, alice, bob):
    limited = services.replace(quotas__request_burst=3, quotas__requests_per_minute=1)
    async with served(limited) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        codes = [(await http.get("/api/v2/files", headers=alice.headers)).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        refused = await http.get("/api/v2/files", headers=alice.headers)
        assert refused.status_code == 429 and refused.json()["code"] == "too_many_requests"
        assert int(refused.headers["retry-after"]) >= 1
        posted = await http.post("/api/v2/files/upload", headers=alice.headers, files={"file": ("a.txt", b"a")})
        assert posted.status_code == 429  # refused before its body is read or anything stored
        assert (await http.get("/api/v2/files", headers=bob.headers)).status_code == 200  # per key
        bad = await http.get("/api/v2/files", headers={"Authorization": "Bearer sk_000000000000_nope"})
        assert bad.status_code == 401
