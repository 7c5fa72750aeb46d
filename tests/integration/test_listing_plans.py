"""GET /files over a tenant of thousands of files: every listing is served by an index (no sort and no scan of the
tenant's files, by EXPLAIN), and its order and totals are those of the spec's order counted exactly."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api_calls import listing
from tests.support.callers import Caller, new_caller

pytestmark = pytest.mark.integration

FILES = 4000  # of the measured tenant; three neighbours have 1000 each
CLONE = """
INSERT INTO file (id, tenant, media_type, filename, title, tags, size_bytes, content_type, sha256, object_key,
    upload_method, storage_target, content_category, auto_describe, extracted_text, content_created_at, created_at,
    updated_at)
SELECT gen_random_uuid(), t.tenant, 'document', 'report_' || g || '.txt',
    CASE WHEN g % 7 > 0 THEN 'Report ' || CASE WHEN g % 100 = 0 THEN 'corrosion' ELSE 'routine ' || g % 13 END END,
    ARRAY['site-' || (g % 20)]::varchar[],
    g, 'text/plain', md5(g::text) || md5(g::text), 'files/' || g, 'direct', 'default', 'general', false,
    repeat('inspection findings ', 50), CASE WHEN g % 3 = 0 THEN now() - g * interval '1 hour' END,
    now() - (g / 3) * interval '1 minute', now()
FROM (SELECT {}::uuid AS tenant) t, generate_series(1, {}) AS g
"""
# The four listings measured by benchmarks/listing.py and the other orders, and what each may sort at most: the page,
# or for a filter served by its GIN index the files it matches (a twentieth of the tenant at most here).
QUERIES = {
    "default": ({}, 21),
    "tag": ({"tags": ("site-3",)}, FILES // 20),
    "search": ({"search": "corrosion"}, FILES // 100),
    "deep_offset": ({"offset": FILES - 500}, 21),
    # The other orders, each with its own index.
    "title": ({"sort_by": "title", "sort_order": "asc"}, 21),
    "newest_content": ({"sort_by": "content_created_at"}, 21),
    "largest": ({"sort_by": "size_bytes"}, 21),
}
SPEC_ORDER = "(created_at IS NULL), created_at DESC, id DESC"


@pytest.fixture(scope="module")
async def crowd(database: None) -> Caller:
    """A tenant of FILES cloned files (created_at tied three by three) beside three of 1000, vacuumed and analysed
    as autovacuum leaves a table."""
    from store.tables import File

    caller = await new_caller()
    await File.raw(CLONE, caller.tenant_id, FILES)
    for _ in range(3):
        await File.raw(CLONE, (await new_caller()).tenant_id, 1000)
    await File.raw("VACUUM ANALYZE file")
    return caller


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


async def _plan(statement: Any) -> dict[str, Any]:
    from store.tables import File

    rows = await File.raw("EXPLAIN (ANALYZE, FORMAT JSON) {}", statement)
    return json.loads(rows[0]["QUERY PLAN"])[0]["Plan"]


def _query(params: dict[str, Any]) -> Any:
    from store.files import FileQuery

    return FileQuery(
        search=params.get("search"),
        tags=params.get("tags", ()),
        offset=params.get("offset", 0),
        sort_by=params.get("sort_by"),
        sort_order=params.get("sort_order", "desc"),
    )


@pytest.mark.parametrize("name", QUERIES)
async def test_no_listing_sorts_or_scans_the_tenant(crowd, name):
    from store import files

    params, most_sorted = QUERIES[name]
    query = _query(params)
    page = await _plan(files.page_query(crowd.tenant_id, query).querystrings[0])
    count = await _plan(files.count_query(crowd.tenant_id, query, files.COUNT_EXACT_UP_TO + 1))
    for plan in (page, count):
        for node in _nodes(plan):
            assert not (node["Node Type"] == "Seq Scan" and node["Relation Name"] == "file"), (name, plan)
            if node["Node Type"].endswith("Sort"):  # incremental sorts too
                sorted_rows = sum(child["Actual Rows"] * child["Actual Loops"] for child in node["Plans"])
                assert sorted_rows <= most_sorted, (name, sorted_rows, plan)
    assert not any(node["Node Type"].endswith("Sort") for node in _nodes(count))
    if name == "deep_offset":  # the offset is walked in the narrow index, without reading the rows it skips
        walks = [node for node in _nodes(page) if node.get("Index Name") == "file_tenant_newest"]
        assert [node["Node Type"] for node in walks] == ["Index Only Scan"], page
        assert walks[0]["Heap Fetches"] <= query.offset // 100  # pages written since the vacuum, if any


async def _spec_page(tenant_id: uuid.UUID, where: str, order: str, limit: int, offset: int, *args: Any) -> list[str]:
    from store.tables import File

    rows = await File.raw(
        f"SELECT id FROM file WHERE tenant = {{}} AND deleted_at IS NULL{where} ORDER BY {order}"
        f" LIMIT {limit} OFFSET {offset}",
        tenant_id,
        *args,
    )
    return [str(row["id"]) for row in rows]


async def _spec_total(tenant_id: uuid.UUID, where: str, *args: Any) -> int:
    from store.tables import File

    sql = f"SELECT count(*) AS n FROM file WHERE tenant = {{}} AND deleted_at IS NULL{where}"
    return (await File.raw(sql, tenant_id, *args))[0]["n"]


TSV = "(metadata_tsv || content_tsv)"
RANK = f"ts_rank({TSV}, websearch_to_tsquery('english', {{}})) DESC, created_at DESC, id DESC"
MATCHES = f" AND {TSV} @@ websearch_to_tsquery('english', {{}})"
EXPECTED = [
    # (params, extra WHERE, ORDER BY, arguments of both)
    ({}, "", SPEC_ORDER, ()),
    ({"offset": 1990}, "", SPEC_ORDER, ()),
    ({"sort_order": "asc", "offset": 40}, "", "(created_at IS NULL), created_at ASC, id ASC", ()),
    ({"tags": "site-3"}, " AND tags && {}::varchar[]", SPEC_ORDER, (["site-3"],)),
    ({"search": "corrosion", "offset": 20}, MATCHES, RANK, ("corrosion",)),
    ({"sort_by": "content_created_at"}, "", "(content_created_at IS NULL), content_created_at DESC, id DESC", ()),
    ({"sort_by": "size_bytes", "sort_order": "asc"}, "", "(size_bytes IS NULL), size_bytes ASC, id ASC", ()),
    ({"sort_by": "title", "offset": 3400}, "", "(title IS NULL), title DESC, id DESC", ()),
    ({"sort_by": "title", "sort_order": "asc", "offset": 3400}, "", "(title IS NULL), title ASC, id ASC", ()),
]


@pytest.mark.parametrize(("params", "where", "order", "args"), EXPECTED)
async def test_order_and_totals_are_the_specs(http, crowd, monkeypatch, params, where, order, args):
    from store import files

    monkeypatch.setattr(files, "COUNT_EXACT_UP_TO", FILES)  # every total exact, to compare with count(*)
    page = await listing(http, crowd, limit=20, **params)
    offset = params.get("offset", 0)
    order_args = args if "ts_rank" in order else ()
    expected = await _spec_page(crowd.tenant_id, where, order, 20, offset, *args, *order_args)
    total = await _spec_total(crowd.tenant_id, where, *args)
    assert [item["id"] for item in page["items"]] == expected
    assert page["total_count"] == total and page["has_more"] == (offset + 20 < total)


async def test_totals_past_the_exact_range_are_estimates_and_has_more_stays_exact(http, crowd, monkeypatch):
    from store import files

    monkeypatch.setattr(files, "COUNT_EXACT_UP_TO", 1000)  # below the tenant, above its tag's files
    first = await listing(http, crowd, limit=20)
    assert first["has_more"] is True and first["total_count"] > 1000
    assert abs(first["total_count"] - FILES) < FILES // 10  # the planner's estimate, from fresh statistics
    last = await listing(http, crowd, limit=20, offset=FILES - 5)
    assert len(last["items"]) == 5 and last["has_more"] is False and last["total_count"] == FILES
    past = await listing(http, crowd, limit=20, offset=FILES + 10)
    assert past["items"] == [] and past["has_more"] is False and past["total_count"] == FILES
    tag = await listing(http, crowd, limit=20, tags="site-3")
    assert tag["total_count"] == FILES // 20  # below the range: exact
