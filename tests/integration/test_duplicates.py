"""`POST /files/check-duplicates` answers from the caller's live files, as an upload with skip_duplicates would."""

from __future__ import annotations

import hashlib

import pytest

from tests.support import sample_files
from tests.support.api_calls import upload, uploaded

pytestmark = pytest.mark.integration


async def check(http, caller, hashes: list[str]) -> dict:
    response = await http.post("/api/v2/files/check-duplicates", headers=caller.headers, json={"hashes": hashes})
    assert response.status_code == 200, response.text
    return response.json()


async def test_hashes_of_the_callers_live_files_are_duplicates(http, alice, bob) -> None:
    photo, other = sample_files.image(color=(1, 2, 3)), sample_files.image(color=(3, 2, 1))
    kept, fresh = hashlib.sha256(photo).hexdigest(), hashlib.sha256(other).hexdigest()
    file_id = await uploaded(http, alice, photo, "photo.png")

    answer = await check(http, alice, [fresh, kept.upper(), fresh])
    assert answer == {"duplicates": [kept.upper()], "unique": [fresh]}  # as given, each once, in order
    skipped = (await upload(http, alice, photo, "again.png", skip_duplicates=True)).json()
    assert skipped["skipped"] and skipped["existing_file_id"] == file_id  # what the upload does agrees
    assert await check(http, bob, [kept]) == {"duplicates": [], "unique": [kept]}  # another tenant's file

    assert (await http.delete(f"/api/v2/files/{file_id}", headers=alice.headers)).status_code == 200
    assert await check(http, alice, [kept]) == {"duplicates": [], "unique": [kept]}  # in the trash: not live


@pytest.mark.parametrize(
    "body",
    [{"hashes": []}, {"hashes": ["0" * 63]}, {"hashes": ["g" * 64]}, {"hashes": ["0" * 64] * 251}, {}, {"hash": []}],
)
async def test_invalid_bodies_are_422(http, alice, body) -> None:
    response = await http.post("/api/v2/files/check-duplicates", headers=alice.headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


async def test_it_needs_a_key(http) -> None:
    response = await http.post("/api/v2/files/check-duplicates", json={"hashes": ["0" * 64]})
    assert response.status_code == 401
