"""Batch upload and upload sessions: several files in one request, each taken or rejected alone, recorded as a
session whose status, results and summary follow its files' processing; cancelling stops what has not started."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from store import jobs, sessions
from store.tables import File
from store.tables import Job as JobRow
from tests.support import sample_files
from tests.support.api_calls import status as upload_status
from tests.support.callers import Caller, new_caller
from tests.support.file_rows import insert_file
from tests.support.stored_objects import pending_multipart, stored_keys

pytestmark = pytest.mark.integration

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + struct.pack("<HHI", 2, 0x3E, 1) + b"\x00" * 200
REPORT = b"Inspection report\n\nThe scaffolding on the north side was damaged and has been replaced.\n"


async def batch(
    http: httpx.AsyncClient, caller: Caller, parts: list[tuple[str, bytes]], **fields: str
) -> httpx.Response:
    """A batch whose form fields come after its files, as a browser may send them."""
    files = [("files", (name, content, "application/octet-stream")) for name, content in parts]
    return await http.post("/api/v2/files/upload/batch", headers=caller.headers, files=files, data=fields)


async def session_route(http: httpx.AsyncClient, caller: Caller, session_id: str, route: str, **params: Any) -> dict:
    response = await http.get(f"/api/v2/files/sessions/{session_id}/{route}", headers=caller.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def until_session_ends(http: httpx.AsyncClient, caller: Caller, session_id: str) -> dict:
    deadline = datetime.now(UTC) + timedelta(seconds=180)
    while (shown := await session_route(http, caller, session_id, "status"))["status"] == "processing":
        assert datetime.now(UTC) < deadline, shown
    return shown


async def test_a_batch_takes_each_file_alone_and_its_session_follows_their_processing(http, engine, blobs) -> None:
    alice = await new_caller()
    photo = sample_files.image("PNG", (80, 60))
    response = await batch(
        http, alice, [("site.png", photo), ("tool.jpg", ELF), ("report.txt", REPORT), ("empty.txt", b"")], tags="north"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    session_id = body["session_id"]
    assert (body["total_files"], body["accepted_files"], body["rejected_files"]) == (4, 2, 2)
    assert body["status"] == "partial" and body["status_url"] == f"/api/v2/files/sessions/{session_id}/status"
    assert [(item["filename"], item["media_type"]) for item in body["immediate_results"]] == [
        ("site.png", "image"),
        ("report.txt", "document"),
    ]
    assert [(item["filename"], item["code"]) for item in body["rejections"]] == [
        ("tool.jpg", "executable"),
        ("empty.txt", "empty_file"),
    ]
    ids = [item["file_id"] for item in body["immediate_results"]]
    assert sorted(await stored_keys(blobs, alice)) == sorted(f"files/{alice.tenant_id}/{i}/original" for i in ids)
    for file_id in ids:  # the form's fields, sent after the files, apply to each
        shown = await http.get(f"/api/v2/files/{file_id}", headers=alice.headers)
        assert shown.json()["tags"] == ["north"]
        assert (await upload_status(http, alice, file_id))["session_id"] == session_id

    final = await until_session_ends(http, alice, session_id)
    assert final["status"] == "completed" and final["progress_percentage"] == 100.0
    assert (final["total_files"], final["completed_files"], final["failed_files"]) == (4, 2, 2)
    assert (final["skipped_files"], final["pending_files"]) == (0, 0)
    assert {item["file_id"] for item in final["recent_completions"]} == set(ids)
    assert [(item["filename"], item["file_id"]) for item in final["recent_errors"]] == [
        ("tool.jpg", None),
        ("empty.txt", None),
    ]

    results = await session_route(http, alice, session_id, "results")
    assert [(item["filename"], item["status"]) for item in results["results"]] == [
        ("site.png", "completed"),
        ("tool.jpg", "failed"),
        ("report.txt", "completed"),
        ("empty.txt", "failed"),
    ]
    assert results["results"][0]["thumbnail_url"] and results["results"][0]["tags"] == ["north"]
    assert results["results"][1]["error_message"] == body["rejections"][0]["error"]
    assert results["summary"] == {"total_files": 4, "completed": 2, "failed": 2, "skipped": 0}
    only_ok = await session_route(http, alice, session_id, "results", include_failed="false", limit=1)
    assert [item["filename"] for item in only_ok["results"]] == ["site.png"]
    assert (only_ok["total_count"], only_ok["has_more"]) == (2, True)

    summary = await session_route(http, alice, session_id, "summary")
    assert summary["overall_status"] == "completed" and summary["counts"]["total"] == 4
    assert (summary["counts"]["completed"], summary["counts"]["failed"], summary["counts"]["stuck"]) == (2, 2, 0)
    assert summary["error_summary"]["count"] == 2
    listed = (await http.get("/api/v2/files/sessions", headers=alice.headers, params={"status": "completed"})).json()
    assert [item["session_id"] for item in listed["items"]] == [session_id] and listed["total_count"] == 1
    cancelled = await http.get("/api/v2/files/sessions", headers=alice.headers, params={"status": "cancelled"})
    assert cancelled.json()["items"] == []
    again = await http.post(f"/api/v2/files/sessions/{session_id}/cancel", headers=alice.headers)
    assert again.status_code == 400 and again.json()["code"] == "already_ended"


async def test_duplicates_in_a_batch_are_skipped(http, alice) -> None:
    photo = sample_files.image("PNG", (30, 20), color=(9, 9, 9))
    body = (await batch(http, alice, [("a.png", photo), ("b.png", photo)], skip_duplicates="true")).json()
    first, second = body["immediate_results"]
    assert not first["skipped"] and second["skipped"] and second["existing_file_id"] == first["file_id"]
    shown = await session_route(http, alice, body["session_id"], "status")
    assert (shown["total_files"], shown["skipped_files"]) == (2, 1)


async def test_a_batch_over_the_tiers_file_count_stores_nothing(http, blobs) -> None:
    free = await new_caller("free")
    response = await batch(http, free, [(f"{n}.png", sample_files.image("PNG", color=(n, 0, 0))) for n in range(11)])
    assert response.status_code == 422, response.text
    assert "at most 10 files" in response.json()["detail"]
    assert await stored_keys(blobs, free) == []
    assert (await http.get("/api/v2/files/sessions", headers=free.headers)).json()["total_count"] == 0


@pytest.mark.parametrize(
    ("parts", "fields", "status"),
    [([], {"tags": "a"}, 422), ([("a.png", sample_files.image("PNG"))], {"folder_id": "not-a-uuid"}, 422)],
)
async def test_bad_batches_are_refused_whole(http, blobs, alice, parts, fields, status) -> None:
    files = [("files", (name, content)) for name, content in parts] or [("other", ("x.txt", b"x"))]
    response = await http.post("/api/v2/files/upload/batch", headers=alice.headers, files=files, data=fields)
    assert response.status_code == status, response.text
    assert await stored_keys(blobs, alice) == []


async def test_sessions_are_the_tenants_own(http, alice, bob) -> None:
    body = (await batch(http, alice, [("a.txt", REPORT)])).json()
    for route in ("status", "results", "summary"):
        response = await http.get(f"/api/v2/files/sessions/{body['session_id']}/{route}", headers=bob.headers)
        assert response.status_code == 404, (route, response.text)
    cancel = await http.post(f"/api/v2/files/sessions/{body['session_id']}/cancel", headers=bob.headers)
    assert cancel.status_code == 404
    assert (await http.get("/api/v2/files/sessions", headers=bob.headers)).json()["items"] == []


async def test_cancelling_skips_what_has_not_started_and_a_running_step_queues_nothing_more(http, alice) -> None:
    """Jobs of a step no engine runs stand for work not yet started; one is claimed here, as by a worker."""
    step, later = f"session-test-{uuid.uuid4().hex[:6]}", "session-test-follow-up"
    running, waiting = [
        await insert_file(alice.tenant_id, name, text_extraction_status="queued", embedding_status="pending")
        for name in ("running.txt", "waiting.txt")
    ]
    for file_id in (running, waiting):
        await jobs.enqueue(file_id, alice.tenant_id, step)
    session_id = uuid.uuid4()
    entries = [sessions.SessionFile(name, sessions.ACCEPTED, file_id) for name, file_id in
               (("running.txt", running), ("waiting.txt", waiting))]  # fmt: skip
    await sessions.create(session_id, alice.tenant_id, "streaming", datetime.now(UTC), entries)
    [claimed] = await jobs.claim("test-worker", "interactive", 1, 60, [step])
    assert claimed.file_id == running

    response = await http.post(f"/api/v2/files/sessions/{session_id}/cancel", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    left_waiting = await File.select().where(File.id == waiting).first()
    assert (left_waiting["text_extraction_status"], left_waiting["embedding_status"]) == ("skipped", "skipped")
    statuses = {row["file_id"]: row["status"] for row in await JobRow.select().where(JobRow.step == step)}
    assert statuses[waiting] == "cancelled" and statuses[claimed.file_id] == "running"

    changes = {"text_extraction_status": "completed", "embedding_status": "queued"}
    assert await jobs.complete(claimed.id, "test-worker", changes, follow_ups=(later,))
    assert await JobRow.select().where((JobRow.step == later) & (JobRow.file_id == claimed.file_id)) == []
    done = await File.select().where(File.id == claimed.file_id).first()
    assert (done["text_extraction_status"], done["embedding_status"]) == ("completed", "skipped")
    listed = (await http.get("/api/v2/files/sessions", headers=alice.headers, params={"status": "cancelled"})).json()
    assert session_id in {uuid.UUID(item["session_id"]) for item in listed["items"]}


async def test_a_file_over_the_limit_is_rejected_alone_and_leaves_nothing(http, blobs, alice) -> None:
    """Streamed without a Content-Length, so the limit is met mid-file: its multipart upload is aborted, the rest of
    its bytes dropped, and the next file is still taken."""
    mib, photo = 1024 * 1024, sample_files.image("PNG", (40, 30), color=(5, 6, 7))

    async def body():
        yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.jpg"\r\n\r\n'
        yield sample_files.image("JPEG")
        for _ in range(101):
            yield bytes(range(256)) * (mib // 256)
        yield b'\r\n--b\r\nContent-Disposition: form-data; name="files"; filename="small.png"\r\n\r\n'
        yield photo
        yield b"\r\n--b--\r\n"

    headers = {**alice.headers, "Content-Type": "multipart/form-data; boundary=b"}
    response = await http.post("/api/v2/files/upload/batch", headers=headers, content=body())
    assert response.status_code == 201, response.text
    taken = response.json()
    assert [(item["filename"], item["code"]) for item in taken["rejections"]] == [("big.jpg", "payload_too_large")]
    [small] = taken["immediate_results"]
    assert await stored_keys(blobs, alice) == [f"files/{alice.tenant_id}/{small['file_id']}/original"]
    assert await pending_multipart(blobs, alice) == []


async def test_a_file_deleted_since_shows_in_its_session_as_deleted_without_its_data(http, alice) -> None:
    photo = {"small_256": {"key": "files/x/small.webp", "width": 256, "height": 160, "content_type": "image/webp"}}
    kept, deleted = [
        await insert_file(
            alice.tenant_id,
            name,
            media_type="image",
            content_type="image/jpeg",
            tags=["secret-tag"],
            upload_description="a secret description",
            visible_text="SECRET TEXT",
            variants=photo,
            variant_status="completed",
            completed_at=datetime.now(UTC),
        )
        for name in ("kept.jpg", "deleted.jpg")
    ]
    session_id = uuid.uuid4()
    entries = [
        sessions.SessionFile(name, sessions.ACCEPTED, file)
        for name, file in (("kept.jpg", kept), ("deleted.jpg", deleted))
    ]
    await sessions.create(session_id, alice.tenant_id, "streaming", datetime.now(UTC), entries)
    assert (await http.delete(f"/api/v2/files/{deleted}", headers=alice.headers)).status_code == 200

    shown, gone = (await session_route(http, alice, str(session_id), "results"))["results"]
    assert shown["status"] == "completed" and shown["tags"] == ["secret-tag"] and shown["thumbnail_url"]
    assert gone["file_id"] == str(deleted) and gone["filename"] == "deleted.jpg" and gone["status"] == "deleted"
    assert (gone["tags"], gone["description"], gone["visible_text"], gone["thumbnail_url"]) == ([], None, None, None)
    status = await session_route(http, alice, str(session_id), "status")
    assert [done["file_id"] for done in status["recent_completions"]] == [str(kept)]


async def test_every_status_the_spec_names_is_a_filter(http, alice) -> None:
    await batch(http, alice, [("a.txt", REPORT)])
    for state in ("pending", "uploading", "processing", "completed", "failed", "expired", "cancelled"):
        response = await http.get("/api/v2/files/sessions", headers=alice.headers, params={"status": state})
        assert response.status_code == 200, (state, response.text)
        if state in ("pending", "uploading", "expired"):
            assert response.json() == {"items": [], "total_count": 0, "limit": 20, "offset": 0, "has_more": False}
    unknown = await http.get("/api/v2/files/sessions", headers=alice.headers, params={"status": "asleep"})
    assert unknown.status_code == 422 and unknown.json()["code"] == "validation_error"


async def test_a_direct_upload_is_recorded_as_a_presigned_session(http, alice) -> None:
    from tests.support.direct_uploads import complete, intent, put_single

    created = await intent(http, alice, REPORT, "report.txt", content_type="text/plain")
    assert (await put_single(created, REPORT)).status_code == 200
    done = await complete(http, alice, created["upload_id"])
    assert done.status_code == 202, done.text
    await batch(http, alice, [("b.txt", REPORT + b"!")])
    params = {"upload_method": "presigned"}
    listed = (await http.get("/api/v2/files/sessions", headers=alice.headers, params=params)).json()
    assert listed["total_count"] == 1
    [item] = listed["items"]
    assert item["upload_method"] == "presigned" and item["total_files"] == 1
    results = await session_route(http, alice, item["session_id"], "results")
    assert [entry["file_id"] for entry in results["results"]] == [done.json()["file_id"]]
    streaming = await http.get("/api/v2/files/sessions", headers=alice.headers, params={"upload_method": "streaming"})
    assert [entry["upload_method"] for entry in streaming.json()["items"]] == ["streaming"]
