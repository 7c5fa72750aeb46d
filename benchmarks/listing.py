"""Requests per second and latency of GET /api/v2/files on a large tenant, through a real `scopix serve`, beside the
time of its SQL alone.

One tenant of 100k files among 50 (the 49 others of 1k each), rows cloned in SQL: four in five images, each with
three variants and so three presigned URLs in a listing, as processed images have (none with --no-variants, to
measure the listing alone), one in five documents with 2 KB of extracted text; titles, tags and texts drawn from
small vocabularies so that a tag filter matches 5% of the tenant and a search word 1%. Four listings, each loaded
by `--clients` concurrent httpx clients for `--seconds` (after a warm-up): the default order (newest first), a tag
filter, a full-text search (relevance order) and a deep offset (50,000). For each: RPS, p50 and p99; p50 and p99
of one client alone (the request's own time, without queueing); and the time of its SQL alone: EXPLAIN ANALYZE
(planning plus execution, median of 5, unloaded) of the statements the request runs, the page
(store.files.page_query), its capped count where the total needs one (store.files.count_query) and the planning
of the estimate where the total is past the exact range.

    .venv/bin/python benchmarks/listing.py [--files 100000] [--tenants 50] [--other-files 1000] [--clients 16]
        [--seconds 10] [--no-variants]

Targets (issue): API p50 <= 3x its SQL's time, p99 <= 25 ms at 16 clients. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.service import running_service  # noqa: E402

BATCH = 20_000  # rows per INSERT
# Title words: each file's title has one, so a word matches 1% of a tenant.
TITLE_WORDS = [f"{stem}{suffix}" for stem in ("corrosion", "fissure", "leakage", "spalling", "rust") for suffix in (
    "", "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima",
    "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra",
)]  # fmt: skip
SEARCH_WORD = TITLE_WORDS[0]
TAG = "site-3"  # tags site-0 .. site-19: 5% each
QUERIES: dict[str, dict[str, Any]] = {
    "default": {},
    "tag": {"tags": [TAG]},
    "search": {"search": SEARCH_WORD},
    "deep_offset": {"offset": 50_000},
}
PARAGRAPH = (
    "The quarterly inspection of the north yard found the drainage channels clear and the scaffolding secure; "
    "the facilities team will review the remaining findings with the site manager before the next visit. "
)

SEED_SQL = """
INSERT INTO file (
    id, tenant, media_type, filename, title, tags, size_bytes, content_type, format, sha256, object_key,
    upload_method, storage_target, content_category, auto_describe, variant_status, ocr_status, embedding_status,
    description_status, text_extraction_status, digitization_status, upload_description, visible_text,
    extracted_text, dimensions, variants, variant_count, document_type, page_count, chunk_count, created_at,
    updated_at
)
SELECT
    s.id, s.tenant, CASE WHEN s.doc THEN 'document' ELSE 'image' END,
    CASE WHEN s.doc THEN 'report_' || s.g || '.pdf' ELSE 'photo_' || s.g || '.jpg' END,
    'Inspection ' || s.words[1 + abs(hashint4(s.g)) % array_length(s.words, 1)],
    ARRAY['site-' || (s.g % 20), 'batch-' || (s.g % 7)]::varchar(50)[],
    1000 + s.g % 100000, CASE WHEN s.doc THEN 'application/pdf' ELSE 'image/jpeg' END,
    CASE WHEN s.doc THEN NULL ELSE 'jpeg' END, md5(s.id::text) || md5(s.g::text),
    'files/' || s.tenant || '/' || s.id || '/original', 'streaming', 'default', 'general', false,
    CASE WHEN s.doc THEN NULL ELSE 'completed' END, CASE WHEN s.doc THEN NULL ELSE 'completed' END, 'completed',
    'skipped', CASE WHEN s.doc THEN 'completed' END, CASE WHEN s.doc THEN 'completed' END,
    'Photo ' || s.g || ' of the yard, taken during the walkthrough', CASE WHEN s.doc THEN NULL ELSE 'EXIT 3' END,
    CASE WHEN s.doc THEN repeat(s.paragraph, 8) END,
    CASE WHEN s.doc THEN NULL ELSE jsonb_build_object('width', 4000, 'height', 3000) END,
    CASE WHEN s.doc OR NOT s.variants THEN NULL ELSE (
        SELECT jsonb_object_agg(v.name, jsonb_build_object(
            'key', 'files/' || s.tenant || '/' || s.id || '/' || v.name || '.webp', 'content_type', 'image/webp',
            'width', v.width, 'height', v.width * 3 / 4))
        FROM (VALUES ('small_256', 256), ('medium_750', 750), ('large_1024', 1024)) AS v (name, width)
    ) END,
    CASE WHEN s.doc THEN NULL ELSE 3 END, CASE WHEN s.doc THEN 'pdf' END, CASE WHEN s.doc THEN 4 END,
    CASE WHEN s.doc THEN 12 END,
    now() - s.g * interval '1 minute', now() - s.g * interval '1 minute'
FROM (
    SELECT g, gen_random_uuid() AS id, p.tenant, g % 5 = 0 AS doc, p.words, p.paragraph, p.variants
    FROM (SELECT {}::uuid AS tenant, {}::int AS first, {}::int AS last, {}::text[] AS words, {}::text AS paragraph,
        {}::bool AS variants) p,
        generate_series(p.first, p.last) AS g
) AS s
"""


async def seed(big: uuid.UUID, files: int, tenants: int, other_files: int, variants: bool) -> float:
    """Clone the rows in SQL; returns the seconds taken (VACUUM ANALYZE included: statistics and the visibility map
    that index-only scans read, as autovacuum leaves them)."""
    from store.tables import File
    from store.tenants import ensure_tenant

    started = time.perf_counter()
    sizes = {big: files}
    for number in range(tenants - 1):
        other = await ensure_tenant(f"other-{number}-{uuid.uuid4().hex[:6]}", None)
        sizes[other.id] = other_files
    for tenant, size in sizes.items():
        for first in range(1, size + 1, BATCH):
            last = min(size, first + BATCH - 1)
            await File.raw(SEED_SQL, tenant, first, last, TITLE_WORDS, PARAGRAPH, variants)
    await File.raw("VACUUM ANALYZE file")
    return time.perf_counter() - started


async def sql_ms(
    tenant: uuid.UUID, params: dict[str, Any], shown: int, more: bool, estimated: bool
) -> dict[str, float | None]:
    """Median planning + execution time of the statements one request runs, by EXPLAIN ANALYZE."""
    from store import files
    from store.files import FileQuery
    from store.tables import File

    query = FileQuery(search=params.get("search"), tags=params.get("tags", ()), offset=params.get("offset", 0))
    cap = files.count_cap(query.offset, shown, more)
    statements = {"page": files.page_query(tenant, query).querystrings[0]}
    if cap is not None:
        statements["count"] = files.count_query(tenant, query, cap)
    explain = {name: "EXPLAIN (ANALYZE, FORMAT JSON) {}" for name in statements}
    if estimated:
        statements["estimate"] = files.matching(tenant, query).querystrings[0]
        explain["estimate"] = "EXPLAIN (SUMMARY, FORMAT JSON) {}"
    times: dict[str, float | None] = {"count": None, "estimate": None}
    for name, statement in statements.items():
        runs = []
        for _ in range(5):
            plan = json.loads((await File.raw(explain[name], statement))[0]["QUERY PLAN"])[0]
            runs.append(plan["Planning Time"] + plan.get("Execution Time", 0.0))
        times[name] = round(statistics.median(runs), 2)
    return {"sql_ms": round(sum(t for t in times.values() if t is not None), 2), **times}


async def load(base: str, key: str, params: dict[str, Any], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` concurrent clients, each sending its next request when the last one is answered."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as http:
        first = await http.get("/api/v2/files", params=params)
        first.raise_for_status()

        async def client(until: float, record: bool) -> None:
            while time.perf_counter() < until:
                sent = time.perf_counter()
                response = await http.get("/api/v2/files", params=params)
                response.raise_for_status()
                if record:
                    latencies.append(time.perf_counter() - sent)

        warm = time.perf_counter() + min(2.0, seconds / 5)
        await asyncio.gather(*(client(warm, False) for _ in range(clients)))
        started = time.perf_counter()
        await asyncio.gather(*(client(started + seconds, True) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    page = first.json()
    return {
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1),
        "requests": len(latencies),
        "total_count": page["total_count"],
        "shown": len(page["items"]),
        "has_more": page["has_more"],
    }


async def measure(service: Any, args: argparse.Namespace) -> dict[str, Any]:
    import piccolo_conf  # noqa: F401  (needs the database up)
    from store import files
    from store.database import pooled
    from store.tables import Tenant

    async with pooled(2, min_size=1):
        big = (await Tenant.select(Tenant.id).where(Tenant.name == "bench").first())["id"]
        seed_s = await seed(big, args.files, args.tenants, args.other_files, args.variants)
        print(f"seeded {args.files} files in the tenant, {args.other_files} in each of {args.tenants - 1} others"
              f" in {seed_s:.1f} s")  # fmt: skip
        results: dict[str, Any] = {}
        for name, params in QUERIES.items():
            figures = await load(service.base, service.key, params, args.clients, args.seconds)
            alone = await load(service.base, service.key, params, 1, min(args.seconds, 5.0))
            figures |= {"one_client_p50_ms": alone["p50_ms"], "one_client_p99_ms": alone["p99_ms"]}
            estimated = figures["total_count"] > files.COUNT_EXACT_UP_TO
            figures |= await sql_ms(big, params, figures.pop("shown"), figures["has_more"], estimated)
            figures["p50_over_sql"] = round(figures["p50_ms"] / figures["sql_ms"], 1)
            print(name, figures)
            results[name] = figures
        return {"seed_s": round(seed_s, 1), "queries": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="files of the measured tenant")
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--other-files", type=int, default=1000, help="files of each other tenant")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--variants", action=argparse.BooleanOptionalAction, default=True,
        help="images with variants (presigned URLs in every listed image); --no-variants measures the listing alone",
    )  # fmt: skip
    args = parser.parse_args()

    from store.services import local_services

    with running_service(engine__serve="false") as service, local_services(service.data_dir, s3=False):
        figures = asyncio.run(measure(service, args))
    result = {
        "files": args.files,
        "tenants": args.tenants,
        "other_files": args.other_files,
        "clients": args.clients,
        "seconds": args.seconds,
        "variants": args.variants,
        "cpus": len(os.sched_getaffinity(0)),
        **figures,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
