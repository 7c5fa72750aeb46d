"""A crash anywhere in a direct upload leaves nothing behind after the engines' upkeep, against the real Postgres and
SeaweedFS: an intent left VERIFYING by a `complete` that died is settled, and S3 state written before its row (a
multipart upload, an object) is removed once older than the grace, while what a row owns stays."""

from __future__ import annotations

import uuid

import pytest

from tests.support import sample_files
from tests.support.direct_uploads import complete, intent, put_part, put_single, state
from tests.support.stored_objects import pending_multipart, stored_keys

pytestmark = pytest.mark.integration
MIB = 1024 * 1024
CONTENT = sample_files.TEXT


def reaper(services, caller, grace_seconds: float = 60):
    """The upkeep's reaper, confined to one tenant's keys so that other tests' objects are never its business."""
    from pipelines.upload_reaper import IntentReaper
    from store.step_objects import S3Location

    return IntentReaper(S3Location.from_settings(services), grace_seconds, prefix=f"files/{caller.tenant_id}/")


async def died_verifying(upload_id: str, hours_ago: float) -> None:
    """A `complete` took the intent, then its process died `hours_ago`: nothing settled it."""
    from store.tables import UploadIntent

    await UploadIntent.raw(
        "UPDATE upload_intent SET status = 'VERIFYING', claimed_at = now() - make_interval(secs => {}) WHERE id = {}",
        hours_ago * 3600,
        upload_id,
    )


async def test_an_intent_left_verifying_fails_and_its_object_is_deleted(client, blobs, services, alice):
    from store import upload_intents

    dead = await intent(client, alice, CONTENT, "notes.txt", content_type="text/plain")
    running = await intent(client, alice, CONTENT, "again.txt", content_type="text/plain")
    for created in (dead, running):
        assert (await put_single(created, CONTENT)).status_code == 200
    await died_verifying(dead["upload_id"], hours_ago=2)
    await upload_intents.claim(alice.tenant_id, uuid.UUID(running["upload_id"]))  # a `complete` still at work

    assert await reaper(services, alice).recover() == (0, 1)
    failed = await state(client, alice, dead["upload_id"])
    assert failed["status"] == "FAILED" and "interrupted" in failed["error_message"]
    assert await stored_keys(blobs, alice) == [running["object_key"]]
    assert (await state(client, alice, running["upload_id"]))["status"] == "VERIFYING"


async def test_a_complete_that_the_upkeep_failed_meanwhile_cannot_finish(client, services, alice):
    from store import upload_intents

    created = await intent(client, alice, CONTENT, "notes.txt", content_type="text/plain")
    assert (await put_single(created, CONTENT)).status_code == 200
    await died_verifying(created["upload_id"], hours_ago=2)  # the `complete` is slow, not dead
    assert await reaper(services, alice).recover() == (0, 1)
    assert not await upload_intents.finish(uuid.UUID(created["upload_id"]), deduplicated=False)
    assert (await state(client, alice, created["upload_id"]))["status"] == "FAILED"


async def test_an_intent_whose_file_was_recorded_is_completed(client, blobs, services, alice):
    created = await intent(client, alice, CONTENT, "notes.txt", content_type="text/plain")
    assert (await put_single(created, CONTENT)).status_code == 200
    assert (await complete(client, alice, created["upload_id"])).status_code == 202
    await died_verifying(created["upload_id"], hours_ago=2)  # after the file row was written, before the intent

    assert await reaper(services, alice).recover() == (1, 0)
    assert (await state(client, alice, created["upload_id"]))["status"] == "COMPLETED"
    assert await stored_keys(blobs, alice) == [created["object_key"]]


async def test_s3_state_without_a_row_is_swept_after_the_grace(client, blobs, services, alice):
    from store.keys import original_key

    # A crash between S3 and the database: a multipart upload started, an object written, and no row for either.
    orphan_upload = original_key(alice.tenant_id, uuid.uuid4())
    await blobs.start_multipart(orphan_upload, "video/mp4")
    orphan_object = original_key(alice.tenant_id, uuid.uuid4())
    await blobs.client.put_object(Bucket=blobs.bucket, Key=orphan_object, Body=b"left behind")
    # What rows own: an open multipart intent with a part sent, an open single-shot one, a completed file.
    content = CONTENT * (6 * MIB // len(CONTENT) + 1)
    multipart = await intent(client, alice, content, "long.txt", content_type="text/plain", part_size_bytes=5 * MIB)
    await put_part(multipart, content, 1)
    single = await intent(client, alice, CONTENT, "notes.txt", content_type="text/plain")
    assert (await put_single(single, CONTENT)).status_code == 200
    done = await intent(client, alice, CONTENT, "done.txt", content_type="text/plain")
    assert (await put_single(done, CONTENT)).status_code == 200
    assert (await complete(client, alice, done["upload_id"])).status_code == 202

    assert await reaper(services, alice, grace_seconds=3600).sweep() == (0, 0)  # younger than the grace
    assert await reaper(services, alice, grace_seconds=0).sweep() == (1, 1)
    assert await pending_multipart(blobs, alice) == [multipart["object_key"]]
    assert sorted(await stored_keys(blobs, alice)) == sorted([single["object_key"], done["object_key"]])
    assert (await state(client, alice, multipart["upload_id"]))["parts_confirmed"] == 0
