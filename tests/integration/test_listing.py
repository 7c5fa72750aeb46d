"""GET /files: every filter, sort, pagination bound and full-text search mode."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.support import sample_files
from tests.support.api_calls import listing, uploaded

pytestmark = pytest.mark.integration

FOLDER = str(uuid.uuid4())
PROJECT = str(uuid.uuid4())


async def _set(file_id: str, **values) -> None:
    """Stand in for processing results that later pipelines write (OCR text, descriptions...)."""
    from store.tables import File

    await File.update({File._meta.get_column_by_name(k): v for k, v in values.items()}).where(
        File.id == uuid.UUID(file_id)
    )


@pytest.fixture
async def library(client, alice):
    """Four files of three media types with distinct metadata."""
    ids = {
        "photo": await uploaded(
            client, alice, sample_files.image("JPEG", (40, 30)), "site_photo.jpg",
            title="Damaged pillar", tags="damage,concrete", folder_id=FOLDER,
        ),
        "manual": await uploaded(
            client, alice, sample_files.pdf(), "safety_manual.pdf", title="Safety manual", tags="safety",
            project_id=PROJECT,
        ),
        "notes": await uploaded(client, alice, sample_files.TEXT, "notes.txt", title="Zebra notes", tags="inspection"),
        "clip": await uploaded(client, alice, sample_files.mp4(), "clip.mp4", title="Walkthrough video"),
    }  # fmt: skip
    await _set(ids["photo"], visible_text="WARNING: STRUCTURAL DAMAGE", upload_description="A cracked pillar")
    await _set(ids["manual"], extracted_text="Inspections must be conducted quarterly by certified staff.")
    await _set(ids["notes"], content_created_at=datetime(2020, 1, 1, tzinfo=UTC), compliance_status="passed")
    return ids


def _ids(page: dict) -> list[str]:
    return [item["id"] for item in page["items"]]


async def test_items_have_the_spec_fields_and_primary_status(client, alice, library):
    page = await listing(client, alice)
    assert page["total_count"] == 4 and page["limit"] == 20 and page["offset"] == 0 and page["has_more"] is False
    photo = next(item for item in page["items"] if item["id"] == library["photo"])
    for field in (
        "title", "filename", "thumbnail_url", "upload_description", "visible_text", "tags", "size_bytes",
        "created_at", "content_created_at", "has_full_description", "dimensions", "format", "primary_status",
        "variant_status", "variant_count", "medium_url", "full_url", "blur_hash", "description_status",
        "description_error", "content_type", "media_type", "content_category", "document_type", "source_url",
    ):  # fmt: skip
        assert field in photo, field
    assert photo["primary_status"] in ("processing", "completed")
    assert photo["description_status"] == "skipped" and "no describe model" in photo["description_error"]
    manual = next(item for item in page["items"] if item["id"] == library["manual"])
    assert manual["text_extraction_status"] in ("queued", "processing", "completed") and "page_count" in manual
    assert "text_extraction_status" not in photo  # document-only field
    clip = next(item for item in page["items"] if item["id"] == library["clip"])
    assert clip["video_analysis_status"] in ("queued", "processing", "completed")


async def test_search_modes(client, alice, library):
    assert _ids(await listing(client, alice, search="pillar")) == [library["photo"]]
    assert _ids(await listing(client, alice, search="structural", search_mode="metadata")) == []
    assert _ids(await listing(client, alice, search="structural", search_mode="visible_text")) == [library["photo"]]
    assert _ids(await listing(client, alice, search="structural")) == [library["photo"]]
    assert _ids(await listing(client, alice, search="quarterly", search_mode="visible_text")) == [library["manual"]]
    assert _ids(await listing(client, alice, search="manual", search_mode="metadata")) == [library["manual"]]
    # Stemming and filename words: "inspections" finds the "inspection" tag; "site" is in site_photo.jpg.
    assert library["notes"] in _ids(await listing(client, alice, search="inspections"))
    assert _ids(await listing(client, alice, search="site")) == [library["photo"]]


async def test_filters(client, alice, library):
    assert set(_ids(await listing(client, alice, tags=["damage", "safety"]))) == {library["photo"], library["manual"]}
    assert set(_ids(await listing(client, alice, media_types=["image", "video"]))) == {
        library["photo"],
        library["clip"],
    }
    assert _ids(await listing(client, alice, folder_id=FOLDER)) == [library["photo"]]
    assert _ids(await listing(client, alice, project_id=PROJECT)) == [library["manual"]]
    assert _ids(await listing(client, alice, has_description="true")) == [library["photo"]]
    assert library["photo"] not in _ids(await listing(client, alice, has_description="false"))
    assert set(_ids(await listing(client, alice, ids=[library["notes"], library["clip"]]))) == {
        library["notes"],
        library["clip"],
    }
    assert _ids(await listing(client, alice, compliance_status="passed")) == [library["notes"]]
    now = datetime.now(UTC)
    assert len(_ids(await listing(client, alice, date_from=(now - timedelta(hours=1)).isoformat()))) == 4
    assert _ids(await listing(client, alice, date_to=(now - timedelta(hours=1)).isoformat())) == []


async def test_sorting_and_pagination(client, alice, library):
    by_title = _ids(await listing(client, alice, sort_by="title", sort_order="asc"))
    assert by_title == [library[k] for k in ("photo", "manual", "clip", "notes")]
    sizes = [
        item["size_bytes"] for item in (await listing(client, alice, sort_by="size_bytes", sort_order="desc"))["items"]
    ]
    assert sizes == sorted(sizes, reverse=True)
    by_content_date = _ids(await listing(client, alice, sort_by="content_created_at", sort_order="desc"))
    assert by_content_date[0] == library["notes"]  # the only one with a date; missing dates sort last
    newest_first = _ids(await listing(client, alice))
    assert newest_first[0] == library["clip"]
    first = await listing(client, alice, limit=3, offset=0)
    second = await listing(client, alice, limit=3, offset=3)
    assert first["has_more"] is True and second["has_more"] is False
    assert _ids(first) + _ids(second) == newest_first


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"sort_by": "colour"}, {"sort_order": "up"},
     {"search_mode": "everything"}, {"media_types": "audio"}, {"ids": "nope"}, {"date_from": "yesterday"},
     {"folder_id": "folder_abc"}],
)  # fmt: skip
async def test_bad_parameters_are_client_errors(client, alice, params):
    response = await client.get("/api/v2/files", headers=alice.headers, params=params)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["code"] in ("validation_error", "bad_request")


async def test_limit_bounds_are_inclusive(client, alice, library):
    assert len((await listing(client, alice, limit=1))["items"]) == 1
    assert (await listing(client, alice, limit=100))["limit"] == 100
