"""Get (by id and prefix), download, patch, soft delete, restore, purge and batch delete."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import httpx
import pytest

from tests.support import sample_files
from tests.support.api_calls import listing, uploaded
from tests.support.file_rows import insert_file

pytestmark = pytest.mark.integration


async def test_get_by_full_id_and_by_prefix(client, alice):
    # A row without jobs: an uploaded file's statuses could move between the two reads.
    file_id = str(await insert_file(alice.tenant_id, "manual.pdf", content_type="application/pdf", document_type="pdf"))
    full = await client.get(f"/api/v2/files/{file_id}", headers=alice.headers)
    prefix = await client.get(f"/api/v2/files/{file_id[:8]}", headers=alice.headers)
    assert full.status_code == prefix.status_code == 200
    assert full.json() == prefix.json()
    body = full.json()
    assert body["media_type"] == "document" and body["document_type"] == "pdf"
    assert "extracted_text" in body and "dimensions" not in body
    unknown = await client.get(f"/api/v2/files/{uuid.uuid4()}", headers=alice.headers)
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    assert (await client.get("/api/v2/files/zzzzzzzz", headers=alice.headers)).status_code == 404


async def test_ambiguous_prefix_is_409(client, alice):
    from store.tables import File

    file_id = await uploaded(client, alice, sample_files.TEXT, "a.txt")
    row = await File.select().where(File.id == uuid.UUID(file_id)).first()
    twin = uuid.UUID(file_id[:8] + "-0000-4000-8000-000000000000")
    await File.insert(File(**{**row, "id": twin, "object_key": f"files/{alice.tenant_id}/{twin}/original"}))
    response = await client.get(f"/api/v2/files/{file_id[:8]}", headers=alice.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "ambiguous_prefix"


IMAGE_FIELDS = (
    "dimensions", "format", "full_url", "thumbnail_url", "medium_url", "original_url", "variant_status",
    "variant_count", "upload_description", "visible_text", "text_regions", "description_generated_at",
    "full_descriptions", "created_at", "updated_at", "blur_hash", "description_status", "content_category",
)  # fmt: skip


async def test_image_detail_shape(client, alice):
    file_id = await uploaded(client, alice, sample_files.image("PNG"), "shot.png")
    body = (await client.get(f"/api/v2/files/{file_id}", headers=alice.headers)).json()
    assert body["media_type"] == "image"
    for field in IMAGE_FIELDS:
        assert field in body, field
    assert body["format"] == "png"
    assert "page_count" not in body


async def test_download_redirects_to_a_presigned_url_with_the_original_bytes(client, alice):
    content = sample_files.docx_file("Über den Bericht")
    filename = 'Prüfbericht 2026 "final".docx'
    file_id = await uploaded(client, alice, content, filename)
    response = await client.get(f"/api/v2/files/{file_id}/download", headers=alice.headers)
    assert response.status_code == 302
    assert response.headers["content-disposition"].startswith("attachment;")
    location = response.headers["location"]
    assert "X-Amz-Expires=300" in location
    fetched = await httpx.AsyncClient().get(location)
    assert fetched.status_code == 200
    assert hashlib.sha256(fetched.content).hexdigest() == hashlib.sha256(content).hexdigest()
    disposition = fetched.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == filename


@pytest.mark.parametrize(
    ("content", "filename", "served_as", "content_type"),
    [
        (sample_files.image("PNG"), "photo.jpg", "photo.png", "image/png"),
        (sample_files.TEXT, "README", "README.txt", "text/plain"),
        (sample_files.TEXT, "notes.text", "notes.text", "text/plain"),
        (sample_files.pdf(), "manual.PDF", "manual.PDF", "application/pdf"),
    ],
)
async def test_download_is_named_and_typed_by_the_detected_content(
    client, alice, content, filename, served_as, content_type
):
    file_id = await uploaded(client, alice, content, filename)
    response = await client.get(f"/api/v2/files/{file_id}/download", headers=alice.headers)
    assert response.status_code == 302
    assert response.headers["x-content-type-options"] == "nosniff"
    assert unquote(response.headers["content-disposition"].split("filename*=UTF-8''")[1]) == served_as
    fetched = await httpx.AsyncClient().get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == content_type
    disposition = fetched.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == served_as


async def test_every_api_response_says_nosniff(client, alice):
    responses = [
        await client.get("/api/v2/files", headers=alice.headers),
        await client.get(f"/api/v2/files/{uuid.uuid4()}", headers=alice.headers),  # an error
        await client.get("/api/v2/files"),  # refused by authentication
        await client.get("/api/v2/no-such-route", headers=alice.headers),  # refused by the router
    ]
    assert [response.status_code for response in responses] == [200, 404, 401, 404]
    assert all(response.headers["x-content-type-options"] == "nosniff" for response in responses)


async def test_patch_changes_only_what_is_sent(client, alice):
    file_id = await uploaded(client, alice, sample_files.image(), "p.jpg", title="Old", tags="a,b")
    url = f"/api/v2/files/{file_id}"
    response = await client.patch(url, headers=alice.headers, json={"title": "New", "user_description": "Minor cracks"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == "New" and body["tags"] == ["a", "b"] and body["user_description"] == "Minor cracks"
    assert set(body) == {"id", "title", "tags", "user_description", "upload_description", "updated_at"}
    assert (await client.patch(url, headers=alice.headers, json={"tags": ["x", " y ", "x"]})).json()["tags"] == [
        "x",
        "y",
    ]
    reset = (await client.patch(url, headers=alice.headers, json={"user_description": None})).json()
    assert reset["user_description"] is None and reset["title"] == "New"
    assert (await client.patch(url, headers=alice.headers, json={"title": "t" * 256})).status_code == 422
    assert (await client.patch(url, headers=alice.headers, json={"tags": ["t"] * 41})).status_code == 422
    assert (await client.patch(url, headers=alice.headers, json={"tags": ["t" * 51]})).status_code == 422
    assert (await client.patch(url, headers=alice.headers, json={"user_description": "d" * 10_001})).status_code == 422
    assert (await client.patch(url, headers=alice.headers, json={"colour": "red"})).status_code in (400, 422)
    assert (await client.get(url, headers=alice.headers)).json()["title"] == "New"


async def test_soft_delete_hides_and_restore_brings_back(client, alice):
    file_id = await uploaded(client, alice, sample_files.image(), "p.jpg")
    url = f"/api/v2/files/{file_id}"
    deleted = await client.delete(url, headers=alice.headers)
    assert deleted.status_code == 200
    assert deleted.json()["id"] == file_id and deleted.json()["deleted_at"]
    assert (await client.get(url, headers=alice.headers)).status_code == 404
    assert (await client.get(f"{url}/download", headers=alice.headers)).status_code == 404
    assert (await listing(client, alice))["total_count"] == 0
    assert (await client.delete(url, headers=alice.headers)).status_code == 404
    restored = await client.post(f"{url}/restore", headers=alice.headers)
    assert restored.status_code == 200, restored.text
    assert (await client.get(url, headers=alice.headers)).status_code == 200
    again = await client.post(f"{url}/restore", headers=alice.headers)
    assert again.status_code == 409 and again.json()["code"] == "not_deleted"


async def test_delete_is_refused_while_text_is_being_extracted(client, alice):
    from store.tables import File

    file_id = await uploaded(client, alice, sample_files.pdf(), "m.pdf")
    await File.update({File.text_extraction_status: "processing"}).where(File.id == uuid.UUID(file_id))
    response = await client.delete(f"/api/v2/files/{file_id}", headers=alice.headers)
    assert response.status_code == 409 and response.json()["code"] == "file_busy"


async def test_purge_removes_rows_and_objects_past_retention_only(client, blobs, alice):
    from pipelines.purge import purge_expired
    from store.tables import File

    old = await uploaded(client, alice, sample_files.image(color=(1, 1, 1)), "old.jpg")
    recent = await uploaded(client, alice, sample_files.image(color=(2, 2, 2)), "recent.jpg")
    kept = await uploaded(client, alice, sample_files.image(color=(3, 3, 3)), "kept.jpg")
    for file_id in (old, recent):
        assert (await client.delete(f"/api/v2/files/{file_id}", headers=alice.headers)).status_code == 200
    await File.update({File.deleted_at: datetime.now(UTC) - timedelta(days=31)}).where(File.id == uuid.UUID(old))

    assert await purge_expired(blobs, retention_days=30) >= 1

    assert not await File.exists().where(File.id == uuid.UUID(old))
    assert await blobs.keys(f"files/{alice.tenant_id}/{old}/") == []
    assert await File.exists().where(File.id == uuid.UUID(recent))
    assert await blobs.keys(f"files/{alice.tenant_id}/{recent}/") != []
    assert (await client.post(f"/api/v2/files/{old}/restore", headers=alice.headers)).status_code == 404
    assert (await client.post(f"/api/v2/files/{recent}/restore", headers=alice.headers)).status_code == 200
    assert (await client.get(f"/api/v2/files/{kept}", headers=alice.headers)).status_code == 200


async def test_batch_delete_reports_each_file(client, alice, bob):
    mine = [await uploaded(client, alice, sample_files.image(color=(i, 0, 0)), f"{i}.jpg") for i in range(3)]
    theirs = await uploaded(client, bob, sample_files.image(), "bob.jpg")
    await client.delete(f"/api/v2/files/{mine[2]}", headers=alice.headers)
    missing = str(uuid.uuid4())
    response = await client.post(
        "/api/v2/files/batch-delete",
        headers=alice.headers,
        json={"file_ids": [mine[0], mine[1], mine[2], missing, theirs]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"] == {"total": 5, "deleted": 2, "skipped": 1, "failed": 2}
    assert {entry["id"] for entry in body["deleted"]} == {mine[0], mine[1]}
    assert all(entry["status"] == "deleted" and entry["deleted_at"] for entry in body["deleted"])
    assert body["skipped"][0]["id"] == mine[2]
    assert {entry["id"]: entry["message"] for entry in body["failed"]} == {
        missing: "File not found",
        theirs: "File not found",
    }
    assert (await client.get(f"/api/v2/files/{theirs}", headers=bob.headers)).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [{"file_ids": []}, {"file_ids": [str(uuid.uuid4()) for _ in range(101)]}, {"file_ids": ["nope"]}, {}],
)
async def test_batch_delete_validates_its_input(client, alice, payload):
    response = await client.post("/api/v2/files/batch-delete", headers=alice.headers, json=payload)
    assert response.status_code in (400, 422), response.text


async def test_batch_delete_refuses_duplicate_ids(client, alice):
    same = str(uuid.uuid4())
    response = await client.post("/api/v2/files/batch-delete", headers=alice.headers, json={"file_ids": [same, same]})
    assert response.status_code == 422
