"""Metadata exports: the caller's files as CSV, XLSX or DOCX at a download URL, with the columns asked for."""

from __future__ import annotations

import csv
import io

import docx
import httpx
import pytest
from openpyxl import load_workbook

from tests.support import sample_files
from tests.support.api_calls import uploaded

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
    ],
)
async def test_bad_exports_are_422(http, alice, body) -> None:
    response = await http.post("/api/v2/files/export", headers=alice.headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
