"""Idempotency-Key on the direct-upload routes, against the real server and Postgres: a replay answers the first
answer without doing the work again, another body under the same key is refused, keys are per tenant and expire."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from tests.support import sample_files
from tests.support.api_calls import listing
from tests.support.direct_uploads import ROUTE, complete, put_single, send_parts, sha256
from tests.support.stored_objects import stored_keys

pytestmark = pytest.mark.integration
CONTENT = sample_files.TEXT
MIB = 1024 * 1024


def new_intent(content: bytes = CONTENT, filename: str = "notes.txt", **fields) -> dict:
    body = {"filename": filename, "content_type": "text/plain", "size_bytes": len(content)}
    return body | {"claimed_file_hash": sha256(content), **fields}


async def post(client, caller, body: dict, key: str | None):
    headers = caller.headers | ({"Idempotency-Key": key} if key is not None else {})
    return await client.post(ROUTE, headers=headers, json=body)


async def complete_with(client, caller, upload_id: str, key: str):
    return await client.post(f"{ROUTE}/{upload_id}/complete", headers=caller.headers | {"Idempotency-Key": key})


async def intent_count(caller) -> int:
    from store.tables import UploadIntent

    return await UploadIntent.count().where(UploadIntent.tenant == caller.tenant_id)


async def test_a_replay_answers_the_first_answer_without_a_second_intent(client, alice):
    first = await post(client, alice, new_intent(), "create-1")
    assert first.status_code == 201, first.text
    # The same request spelled otherwise (key order, an optional field at its default) is the same request.
    spelled = dict(reversed(list(new_intent(skip_duplicates=False).items())))
    again = await post(client, alice, spelled, "create-1")
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert await intent_count(alice) == 1


async def test_the_same_key_with_another_body_is_422(client, alice):
    assert (await post(client, alice, new_intent(), "create-2")).status_code == 201
    other = await post(client, alice, new_intent(filename="other.txt"), "create-2")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in other.json()["detail"]
    assert await intent_count(alice) == 1


@pytest.mark.parametrize("key", ["", "a" * 129, "two words", "a/b", "key:1", "é".encode()])
async def test_a_malformed_key_is_422_and_nothing_is_created(client, alice, key):
    headers = alice.headers | {"Idempotency-Key": key}
    response = await client.post(ROUTE, headers=headers, json=new_intent())
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_idempotency_key" and "Idempotency-Key" in response.json()["detail"]
    assert await intent_count(alice) == 0


async def test_keys_are_per_tenant(client, alice, bob):
    mine = await post(client, alice, new_intent(), "shared.key_1")
    theirs = await post(client, bob, new_intent(filename="theirs.txt"), "shared.key_1")
    assert mine.status_code == theirs.status_code == 201, theirs.text
    assert mine.json()["upload_id"] != theirs.json()["upload_id"]
    assert await intent_count(alice) == await intent_count(bob) == 1


async def test_complete_is_done_once_and_replayed(client, blobs, alice):
    created = (await post(client, alice, new_intent(), None)).json()
    assert (await put_single(created, CONTENT)).status_code == 200
    first = await complete_with(client, alice, created["upload_id"], "complete-1")
    assert first.status_code == 202, first.text
    again = await complete_with(client, alice, created["upload_id"], "complete-1")
    assert again.status_code == 202 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert (await listing(client, alice))["total_count"] == 1
    # The key names that one call: on another upload's complete it is another request.
    other = (await post(client, alice, new_intent(), None)).json()
    reused = await complete_with(client, alice, other["upload_id"], "complete-1")
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"


async def test_a_final_refusal_is_replayed_as_it_was(client, blobs, alice):
    content = CONTENT * (6 * MIB // len(CONTENT) + 1)
    body = new_intent(content, "long.txt", part_size_bytes=5 * MIB, claimed_file_hash=sha256(content + b"x"))
    created = (await post(client, alice, body, None)).json()
    await send_parts(client, alice, created, content)
    refused = await complete_with(client, alice, created["upload_id"], "bad-hash")
    assert refused.status_code == 409 and refused.json()["code"] == "hash_mismatch"
    again = await complete_with(client, alice, created["upload_id"], "bad-hash")
    assert again.status_code == 409 and again.content == refused.content
    assert again.headers["idempotent-replayed"] == "true"
    # Without the key, the intent answers as it now is: FAILED, no longer open.
    assert (await complete(client, alice, created["upload_id"])).json()["code"] == "upload_not_open"


async def test_a_refusal_that_may_pass_later_frees_the_key(client, blobs, alice):
    created = (await post(client, alice, new_intent(), None)).json()
    early = await complete_with(client, alice, created["upload_id"], "too-early")
    assert early.status_code == 409 and early.json()["code"] == "upload_missing"
    assert (await put_single(created, CONTENT)).status_code == 200
    done = await complete_with(client, alice, created["upload_id"], "too-early")
    assert done.status_code == 202, done.text
    assert "idempotent-replayed" not in done.headers


async def test_an_expired_key_is_new_and_purged(client, alice):
    from pipelines.purge import purge_idempotency_keys
    from store.tables import Tenant

    assert (await post(client, alice, new_intent(), "old-key")).status_code == 201
    await Tenant.raw(
        "UPDATE idempotency_key SET created_at = created_at - interval '25 hours' WHERE tenant = {}", alice.tenant_id
    )
    fresh = await post(client, alice, new_intent(filename="fresh.txt"), "old-key")
    assert fresh.status_code == 201 and fresh.json()["upload_id"] and "idempotent-replayed" not in fresh.headers
    assert await intent_count(alice) == 2
    await post(client, alice, new_intent(), "older-key")
    await Tenant.raw(
        "UPDATE idempotency_key SET created_at = created_at - interval '25 hours' WHERE key = 'older-key' "
        "AND tenant = {}",
        alice.tenant_id,
    )
    assert await purge_idempotency_keys(24) >= 1
    left = await Tenant.raw("SELECT key FROM idempotency_key WHERE tenant = {}", alice.tenant_id)
    assert [row["key"] for row in left] == ["old-key"]


async def test_a_key_in_progress_is_409_and_an_abandoned_one_is_taken_over(client, alice):
    from api.idempotency import fingerprint
    from api.schemas.direct_uploads import DirectUploadRequest
    from store import idempotency_keys
    from store.tables import Tenant

    # Another replica holds the key for this very request and has not answered yet.
    now = datetime.now(UTC)
    scope, old = "POST /files/direct-uploads", now - timedelta(days=1)
    same = fingerprint(scope, msgspec.convert(new_intent(), DirectUploadRequest))
    held = await idempotency_keys.claim(alice.tenant_id, "busy", scope, same, uuid.uuid4(), now, old, old)
    assert held is None
    busy = await post(client, alice, new_intent(), "busy")
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency_key_in_progress"
    assert busy.headers["retry-after"] == "1"
    assert await intent_count(alice) == 0
    # Its process died: once the claim is older than api.idempotency_claim_seconds, the key is free again.
    await Tenant.raw(
        "UPDATE idempotency_key SET created_at = now() - interval '1 hour' WHERE tenant = {}", alice.tenant_id
    )
    assert (await post(client, alice, new_intent(), "busy")).status_code == 201


async def test_concurrent_requests_with_one_key_create_one_intent(client, alice):
    answers = await asyncio.gather(*(post(client, alice, new_intent(), "race") for _ in range(4)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, [a.text for a in answers]
    created = {answer.json()["upload_id"] for answer in answers if answer.status_code == 201}
    assert len(created) == 1 and await intent_count(alice) == 1


async def test_without_a_key_every_request_is_new(client, blobs, alice):
    for _ in range(2):
        assert (await post(client, alice, new_intent(), None)).status_code == 201
    assert await intent_count(alice) == 2 and await stored_keys(blobs, alice) == []
