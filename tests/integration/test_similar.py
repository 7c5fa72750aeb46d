"""GET /files/{id}/similar on real uploads processed by the engine: a resized, re-encoded copy of a photo comes
first among unrelated photos, the ranking blends in what is said about the images, tenants never meet, and
files that are not images are refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from store.tables import File
from testkit.photos import encode, near_copy, photo
from tests.support import sample_files
from tests.support.api_calls import settled, uploaded
from tests.support.callers import Caller, new_caller

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Gallery:
    owner: Caller
    reference: str  # a photo
    copy: str  # the reference resized to 3/8 and re-encoded as a JPEG of quality 60
    others: list[str]  # unrelated photos


@pytest.fixture(scope="module")
async def gallery(server: str, engine) -> AsyncIterator[Gallery]:
    owner = await new_caller()
    pictures = [photo(seed) for seed in range(10, 17)]
    async with httpx.AsyncClient(base_url=server, timeout=120) as http:
        ids = [await uploaded(http, owner, encode(picture), f"photo-{n}.jpg") for n, picture in enumerate(pictures)]
        copy = await uploaded(http, owner, near_copy(pictures[0]), "copy.jpg")
        await settled(http, owner, [*ids, copy])
        yield Gallery(owner, ids[0], copy, ids[1:])


async def similar(client: httpx.AsyncClient, caller: Caller, file_id: str, **params) -> httpx.Response:
    return await client.get(f"/api/v2/files/{file_id}/similar", headers=caller.headers, params=params)


async def test_a_resized_re_encoded_copy_ranks_first_among_unrelated_photos(client, gallery: Gallery) -> None:
    response = await similar(client, gallery.owner, gallery.reference)
    body = response.json()

    assert response.status_code == 200, response.text
    assert body["reference_image_id"] == gallery.reference
    ids = [item["image_id"] for item in body["items"]]
    assert ids[0] == gallery.copy
    assert sorted(ids) == sorted([gallery.copy, *gallery.others])  # all of them, never the reference itself
    assert body["total_count"] == len(body["items"]) == 7
    first, *rest = body["items"]
    assert first["vector_similarity"] > 0.95 > max(item["vector_similarity"] for item in rest)
    scores = [item["relevance_score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert set(first) == {
        "image_id", "title", "description", "relevance_score", "vector_similarity", "thumbnail_url", "medium_url",
        "full_url", "folder_id", "created_at", "media_type", "matched_frame_seconds",
    }  # fmt: skip
    assert first["matched_frame_seconds"] is None  # an image, not a video's frame
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(first["thumbnail_url"])).status_code == 200
    # And the other way round.
    back = (await similar(client, gallery.owner, gallery.copy, limit=1)).json()
    assert [item["image_id"] for item in back["items"]] == [gallery.reference]


async def test_limit_bounds_the_items(client, gallery: Gallery) -> None:
    body = (await similar(client, gallery.owner, gallery.reference, limit=3)).json()
    assert len(body["items"]) == body["total_count"] == 3
    for limit in (0, 51):
        assert (await similar(client, gallery.owner, gallery.reference, limit=limit)).status_code == 422


async def test_what_is_said_about_two_images_raises_their_relevance(client, gallery: Gallery) -> None:
    owner, described = gallery.owner, gallery.others[2]
    text = {"user_description": "Corroded steel beam above the loading dock"}
    try:
        for file_id in (gallery.reference, described):
            patched = await client.patch(f"/api/v2/files/{file_id}", headers=owner.headers, json=text)
            assert patched.status_code == 200, patched.text
        items = {item["image_id"]: item for item in (await similar(client, owner, gallery.reference)).json()["items"]}
    finally:
        for file_id in (gallery.reference, described):
            await client.patch(f"/api/v2/files/{file_id}", headers=owner.headers, json={"user_description": None})

    lifted = items[described]
    assert lifted["description"] == text["user_description"]  # the user's description is the one shown
    # The same text on both sides: text similarity 1.
    assert lifted["relevance_score"] == pytest.approx(0.7 * lifted["vector_similarity"] + 0.3, abs=1e-4)
    for image_id, item in items.items():
        if image_id == described:
            continue
        visible = (await client.get(f"/api/v2/files/{image_id}", headers=owner.headers)).json()["visible_text"]
        if visible is None:  # nothing is said about it: the vectors alone
            assert item["relevance_score"] == item["vector_similarity"]
        else:  # OCR read a few strokes of a synthetic photo as text: blended with a text similarity below 1
            assert item["relevance_score"] < 0.7 * item["vector_similarity"] + 0.3


async def test_another_tenant_s_images_never_appear_and_its_files_are_not_found(
    client, gallery: Gallery, bob: Caller
) -> None:
    twin = await uploaded(client, bob, near_copy(photo(10)), "copy.jpg")  # the same bytes as the owner's copy
    await settled(client, bob, [twin])

    owners = (await similar(client, gallery.owner, gallery.reference)).json()["items"]
    bobs = (await similar(client, bob, twin)).json()

    assert twin not in [item["image_id"] for item in owners]
    assert bobs["items"] == [] and bobs["total_count"] == 0
    assert (await similar(client, bob, gallery.reference)).status_code == 404


async def test_only_images_and_videos_have_similar_images(client, alice: Caller, engine) -> None:
    document = await uploaded(client, alice, sample_files.pdf(), "manual.pdf")
    response = await similar(client, alice, document)
    assert response.status_code == 400 and response.json()["code"] == "wrong_media_type"


async def test_an_image_not_embedded_yet_says_so(client, alice: Caller, engine) -> None:
    file_id = await uploaded(client, alice, encode(photo(30)), "late.jpg")
    await settled(client, alice, [file_id])
    await File.raw("DELETE FROM image_embedding WHERE file_id = {}", uuid.UUID(file_id))  # as before its embedding

    response = await similar(client, alice, file_id)

    assert response.status_code == 409 and response.json()["code"] == "embedding_not_ready"
