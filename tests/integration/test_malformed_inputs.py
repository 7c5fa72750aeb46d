"""Every parameter of every route, at and past its type's limits (tests/support/malformed.py), is answered with a
clear 4xx in the one error shape, never a 5xx."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from api.uploads.fields import FIELD_PARSERS
from tests.support import sample_files
from tests.support.api_calls import uploaded
from tests.support.callers import Caller, new_caller
from tests.support.malformed import Case, Walker

pytestmark = pytest.mark.integration

UPLOAD_FIELDS = tuple(FIELD_PARSERS)
FORMS = {
    "/api/v2/files/upload": ("file", UPLOAD_FIELDS),
    "/api/v2/files/upload/batch": ("files", UPLOAD_FIELDS),
    "/api/v2/files/analyze": ("file", (*UPLOAD_FIELDS, "timeout")),
    "/api/v2/files/analyze/async": ("file", (*UPLOAD_FIELDS, "timeout")),
}
# Body fields whose valid value the schema cannot tell (a pattern, a registry's key).
SAMPLES = {
    "hashes": ["0" * 64],
    "field_key": "filename",
    "query": "inspection",
    "claimed_file_hash": "0" * 64,
    "content_type": "text/plain",
}
# The file sent with a form's malformed field: a text, stored when the fields pass, so that they reach the
# database; analyze's are bytes of no format, refused (415) before it would wait for their text.
FORM_FILES = {
    "/api/v2/files/upload": ("notes.txt", sample_files.TEXT),
    "/api/v2/files/upload/batch": ("notes.txt", sample_files.TEXT),
    "/api/v2/files/analyze": ("unknown.bin", b"\x00\x01\x02 no known format \xff\xfe" * 8),
}
FORM_FILES["/api/v2/files/analyze/async"] = FORM_FILES["/api/v2/files/analyze"]
CONCURRENCY = 8


@pytest.fixture(scope="module")
async def owner(database: None) -> Caller:
    return await new_caller()


@pytest.fixture(scope="module")
async def path_values(http: httpx.AsyncClient, owner: Caller) -> dict[str, str]:
    """A real document, upload session and job of the caller, so that each case reaches past the lookup."""
    document = await uploaded(http, owner, sample_files.TEXT, "notes.txt")
    files = [("files", (f"note{i}.txt", sample_files.TEXT + str(i).encode(), "text/plain")) for i in range(2)]
    batch = await http.post("/api/v2/files/upload/batch", headers=owner.headers, files=files)
    assert batch.status_code == 201, batch.text
    job = await http.post(
        "/api/v2/files/analyze/async",
        headers=owner.headers,
        files={"file": ("job.txt", sample_files.TEXT + b" job", "text/plain")},
    )
    assert job.status_code == 202, job.text
    direct = {"filename": "big.bin", "content_type": "application/octet-stream", "size_bytes": 12 * 1024 * 1024}
    direct |= {"claimed_file_hash": "0" * 64, "part_size_bytes": 5 * 1024 * 1024}
    intent = await http.post("/api/v2/files/direct-uploads", headers=owner.headers, json=direct)
    assert intent.status_code == 201, intent.text
    return {
        "file_id": document,
        "session_id": batch.json()["session_id"],
        "job_id": job.json()["job_id"],
        "upload_id": intent.json()["upload_id"],
        "page_number": "1",
        "variant_type": "thumbnail",
    }


async def _send(http: httpx.AsyncClient, owner: Caller, case: Case) -> httpx.Response:
    headers = dict(owner.headers)
    if case.content_type:
        headers["Content-Type"] = case.content_type
    files = None
    if case.file_field is not None:
        files = [(case.file_field, (*FORM_FILES[case.path], "application/octet-stream"))]
    return await http.request(
        case.method, case.path, params=case.params, content=case.body, data=case.form, files=files, headers=headers
    )


async def test_no_malformed_input_gets_a_5xx(http: httpx.AsyncClient, owner: Caller, path_values) -> None:
    schema = (await http.get("/schema/openapi.json")).json()
    cases = list(Walker(schema, path_values, SAMPLES).cases(FORMS))
    limit = asyncio.Semaphore(CONCURRENCY)
    server_errors: list[str] = []
    unshaped: list[str] = []

    async def check(case: Case) -> None:
        async with limit:
            response = await _send(http, owner, case)
        if response.status_code >= 500:
            server_errors.append(f"{case.label}: {response.status_code} {response.text[:200]}")
        elif response.status_code >= 400 and not {"detail", "code", "status_code"} <= set(response.json()):
            unshaped.append(f"{case.label}: {response.text[:200]}")

    await asyncio.gather(*(check(case) for case in cases))

    report = os.environ.get("MALFORMED_INPUTS_REPORT")
    if report:
        with open(report, "w") as out:
            out.write(f"{len(cases)} malformed inputs, {len(server_errors)} answered 5xx\n")
            out.writelines(f"{line}\n" for line in sorted(server_errors))
    assert len(cases) > 2000  # every route's parameters were walked
    assert not server_errors, f"{len(server_errors)} of {len(cases)} answered 5xx:\n" + "\n".join(server_errors)
    assert not unshaped, "\n".join(unshaped)
