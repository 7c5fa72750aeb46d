"""Metadata exports: the caller's files as CSV, XLSX or DOCX at a download URL, with the columns asked for."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import docx
import httpx
import pytest
from openpyxl import load_workbook

from tests.support import sample_files
from tests.support.api_calls import uploaded
from tests.support.callers import new_caller
from tests.support.file_rows import insert_files

pytestmark = pytest.mark.integration

COLUMNS = [{"field_key": "filename"}, {"field_key": "tags", "display_name": "Labels"}, {"field_key": "media_type"}]


async def exported(http, caller, **body) -> tuple[dict, bytes]:
    response = await http.post("/api/v2/files/export", headers=caller.headers, json={"columns": COLUMNS, **body})
    assert response.status_code == 200, response.text
    result = response.json()
    async with httpx.AsyncClient() as plain:
        download = await plain.get(result["download_url"])
    assert download.status_code == 200
    return result, download.content


@pytest.fixture
async def three_files(http, alice) -> list[str]:
    return [
        await uploaded(http, alice, sample_files.image("PNG", color=(1, 1, n)), name, tags="site,north")
        for n, name in enumerate(("a.png", "=HYPERLINK(1).png", "c.png"))
    ]


async def test_csv_holds_the_callers_files_with_the_columns_asked_for(http, alice, bob, three_files) -> None:
    await uploaded(http, bob, sample_files.image("PNG", color=(9, 9, 9)), "bobs.png")
    result, content = await exported(http, alice, format="csv")
    assert (result["record_count"], result["format"], result["spreadsheet_url"]) == (3, "csv", None)
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows == [
        ["Filename", "Labels", "Media Type"],
        ["a.png", "site, north", "image"],
        ["'=HYPERLINK(1).png", "site, north", "image"],  # never a formula in a spreadsheet
        ["c.png", "site, north", "image"],
    ]


async def test_xlsx_and_docx_scoped_to_file_ids(http, alice, three_files) -> None:
    scope = {"file_ids": three_files[:2], "flatten_tags": False}
    _, content = await exported(http, alice, format="xlsx", sheet_name="Inspections", **scope)
    sheet = load_workbook(io.BytesIO(content))["Inspections"]
    assert [[cell.value for cell in row] for row in sheet.iter_rows()] == [
        ["Filename", "Labels", "Media Type"],
        ["a.png", '["site", "north"]', "image"],
        ["'=HYPERLINK(1).png", '["site", "north"]', "image"],
    ]
    result, content = await exported(http, alice, format="docx", **scope)
    [table] = docx.Document(io.BytesIO(content)).tables
    assert [cell.text for cell in table.rows[1].cells] == ["a.png", '["site", "north"]', "image"]
    assert (len(table.rows), result["record_count"]) == (3, 2)


async def test_the_column_registry_lists_what_an_export_takes(http, alice) -> None:
    groups = (await http.get("/api/v2/files/export/columns", headers=alice.headers)).json()["groups"]
    keys = {column["field_key"] for columns in groups.values() for column in columns}
    assert {"id", "filename", "title", "size_bytes", "created_at", "upload_description", "tags"} <= keys
    assert {column["group"] for column in groups["basic"]} == {"basic"}


@pytest.mark.parametrize(
    "body",
    [
        {"format": "csv", "columns": []},
        {"format": "csv", "columns": [{"field_key": "no_such_column"}]},
        {"format": "pdf", "columns": COLUMNS},
        {"format": "xlsx", "columns": COLUMNS, "sheet_name": "a/b"},
        {"format": "google_sheets", "columns": COLUMNS},
        {"format": "xlsx", "columns": [{"field_key": "filename", "display_name": "a\x01b"}]},
        {"format": "csv", "columns": [{"field_key": "filename", "display_name": "ok\nINJECTED,row"}]},
        {"format": "xlsx", "columns": COLUMNS, "sheet_name": "bell\x07"},
        {"format": "xlsx", "columns": COLUMNS, "sheet_name": "'quoted'"},
        {"format": "csv", "columns": [{"field_key": "filename"}, {"field_key": "filename", "display_name": "Again"}]},
    ],
)
async def test_bad_exports_are_422(http, alice, body) -> None:
    response = await http.post("/api/v2/files/export", headers=alice.headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


async def test_header_cells_are_never_formulas(http, alice, three_files) -> None:
    columns = [
        {"field_key": "filename", "display_name": '=HYPERLINK("http://attacker.example","open")'},
        {"field_key": "media_type", "display_name": "@SUM(1)"},
    ]
    expected = ['\'=HYPERLINK("http://attacker.example","open")', "'@SUM(1)"]
    _, content = await exported(http, alice, format="csv", columns=columns)
    assert next(csv.reader(io.StringIO(content.decode("utf-8-sig")))) == expected
    _, content = await exported(http, alice, format="xlsx", columns=columns, sheet_name="=HYPERLINK(1)")
    sheet = load_workbook(io.BytesIO(content))["=HYPERLINK(1)"]  # a sheet's name is never evaluated
    header = next(sheet.iter_rows())
    assert [cell.value for cell in header] == expected and {cell.data_type for cell in header} == {"s"}


async def test_an_export_is_bounded_in_cells(http, database) -> None:
    caller = await new_caller()
    await insert_files(caller.tenant_id, 5_001)
    every_column = (await http.get("/api/v2/files/export/columns", headers=caller.headers)).json()["groups"]
    keys = [column["field_key"] for columns in every_column.values() for column in columns]
    assert len(keys) == 20
    body = {"format": "csv", "columns": [{"field_key": key} for key in keys]}
    refused = await http.post("/api/v2/files/export", headers=caller.headers, json=body)
    assert refused.status_code == 422, refused.text
    assert "100,000 cells" in refused.json()["detail"]
    body["columns"] = body["columns"][:10]
    taken = await http.post("/api/v2/files/export", headers=caller.headers, json=body)
    assert taken.status_code == 200 and taken.json()["record_count"] == 5_001


async def test_exports_expire_after_their_retention(http, alice, three_files, blobs) -> None:
    from pipelines.purge import purge_expired_exports

    old, _ = await exported(http, alice, format="csv")
    await asyncio.sleep(1.1)  # S3 dates objects to the second
    between = datetime.now(UTC)
    await asyncio.sleep(1.1)
    fresh, _ = await exported(http, alice, format="xlsx")
    lifetime = int(parse_qs(urlparse(fresh["download_url"]).query)["X-Amz-Expires"][0])
    assert lifetime <= 24 * 3600  # the URL outlives no export

    assert await purge_expired_exports(blobs, timedelta(hours=24), now=between + timedelta(hours=24)) >= 1
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(old["download_url"])).status_code == 404
        assert (await plain.get(fresh["download_url"])).status_code == 200
