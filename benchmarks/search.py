"""Latency and recall of the tenant-scoped chunk search (store.embeddings.search) on a fresh embedded Postgres:
100k chunks of 384 dimensions over 50 tenants of Zipf-like sizes (one of ~30k, a few of 5-12k, many small),
inserted through store.embeddings into one model space whose HNSW index is maintained as rows arrive (the
production path), then queried for a small tenant, the tenants either side of the exact/HNSW boundary
(EXACT_MAX_ROWS) and the largest one. Recall@10 is against the exact top 10 computed with numpy over the tenant's
vectors; every search must return `limit` rows.

Large tenants are measured twice in the same run: first through the space's HNSW index (iterative scans, the
path of a tenant before the upkeep has built its index), then through indexes of their own
(store/tenant_indexes.py, built here as the engines' upkeep builds them, concurrently), with the ratios of the
two.

Vectors are clustered like text embeddings: 30 topics, each of 10 sub-topics (300 centres, unit-normalised),
chunks scattered around their sub-topic (cosine ~0.7 to it); a tenant writes about an overlapping,
popularity-weighted subset of sub-topics. Queries are drawn the same way, 80% from the tenant's own sub-topics
(`own`: their top 10 are ~0.55 similar) and 20% from anywhere (`off`: the tenant's nearest chunks are only
~0.3 similar and nearly tied, the hard case for a graph index, reported apart).

    .venv/bin/python benchmarks/search.py [--rows 100000] [--tenants 50] [--queries 200] [--limit 10]
        [--load insert|bulk] [--ef-search 100,200] [--exact-max-rows 5000,10000] [--tenant-ef-search 40,100,200]

`--load bulk` builds the index once after the load instead (quicker; for comparing settings); `--ef-search` and
`--exact-max-rows` measure each combination of the values given on the same data, through the space's index, and
`--tenant-ef-search` each fixed value on the tenants' own indexes, beside the store's setting.

Targets (issue): p95 <= 20 ms and recall@10 >= 0.95 for every tenant measured. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

DIMENSION = 384
MODEL = "benchmark/clustered-384"
TOPICS, SUBTOPICS = 30, 10
FILE_CHUNKS = 500  # chunks per document


def tenant_sizes(rows: int, tenants: int) -> list[int]:
    """One tenant of 30% of the rows, then 12%, 9%, 7%, 5%, and the rest shared Zipf-like by the others."""
    head = [0.30, 0.12, 0.09, 0.07, 0.05]
    weights = 1 / np.arange(1, tenants - len(head) + 1) ** 0.9
    rest = rows * (1 - sum(head)) * weights / weights.sum()
    sizes = [round(rows * share) for share in head] + [max(20, round(n)) for n in rest]
    sizes[-1] += rows - sum(sizes)
    return sizes


def centres(rng: np.random.Generator) -> np.ndarray:
    topics = _unit(rng.normal(size=(TOPICS, DIMENSION)))
    return _unit(np.repeat(topics, SUBTOPICS, axis=0) + 0.8 * _unit(rng.normal(size=(TOPICS * SUBTOPICS, DIMENSION))))


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def around(rng: np.random.Generator, where: np.ndarray, spread: float = 1.0) -> np.ndarray:
    """Points about `where` (rows of unit centres), at cosine ~1/sqrt(1 + spread^2) to them."""
    return _unit(where + spread * rng.normal(size=where.shape) / np.sqrt(DIMENSION))


def subtopics_of(rng: np.random.Generator, popularity: np.ndarray) -> np.ndarray:
    """A tenant's sub-topics: 10 to 60 of them, popular ones more often (tenants overlap)."""
    return rng.choice(len(popularity), int(rng.integers(10, 61)), replace=False, p=popularity)


async def seed(rng: np.random.Generator, sizes: list[int], spaces: np.ndarray) -> dict[uuid.UUID, dict]:
    """Tenants, documents, chunks and vectors; returns per tenant its chunk ids, vectors and sub-topics."""
    from store import documents, embeddings
    from store.tables import File
    from store.tenants import ensure_tenant

    popularity = 1 / np.arange(1, len(spaces) + 1) ** 0.7
    popularity = rng.permutation(popularity / popularity.sum())
    corpus: dict[uuid.UUID, dict] = {}
    gate = asyncio.Semaphore(2)

    async def document(tenant_id: uuid.UUID, vectors: np.ndarray) -> list[uuid.UUID]:
        async with gate:
            file_id = uuid.uuid4()
            await File.insert(
                File(
                    id=file_id, tenant=tenant_id, media_type="document", filename=f"{file_id.hex[:8]}.txt",
                    size_bytes=1, content_type="text/plain", sha256=uuid.uuid4().hex * 2,
                    object_key=f"files/{tenant_id}/{file_id}/original", upload_method="direct",
                    storage_target="default", content_category="general", auto_describe=False,
                )
            )  # fmt: skip
            chunks = [
                {"chunk_index": i, "content": f"chunk {i}", "chunk_type": "paragraph", "heading_hierarchy": [],
                 "page_numbers": [1], "token_count": 2}
                for i in range(len(vectors))
            ]  # fmt: skip
            await documents.replace(file_id, tenant_id, [], chunks)
            ids = [row.id for row in await documents.chunks_of(file_id)]
            await embeddings.save(MODEL, tenant_id, file_id, ids, vectors)
            return ids

    jobs = []
    for number, size in enumerate(sizes):
        tenant = await ensure_tenant(f"bench-{number}-{uuid.uuid4().hex[:6]}", None)
        mine = subtopics_of(rng, popularity)
        vectors = around(rng, spaces[rng.choice(mine, size)])
        corpus[tenant.id] = {"size": size, "subtopics": mine, "vectors": vectors}
        for start in range(0, size, FILE_CHUNKS):
            jobs.append((tenant.id, start, document(tenant.id, vectors[start : start + FILE_CHUNKS])))
    parts = await asyncio.gather(*(job for _, _, job in jobs))
    for tenant_id in corpus:
        corpus[tenant_id]["ids"] = np.array(
            [chunk for (owner, _, _), ids in zip(jobs, parts, strict=True) if owner == tenant_id for chunk in ids]
        )
    return corpus


def _p95(values: list[float]) -> float:
    return round(float(statistics.quantiles(values, n=100)[94]), 2)


async def measure(tenant_id: uuid.UUID, data: dict, queries: np.ndarray, own: np.ndarray, limit: int) -> dict:
    """Latency and recall@limit over `queries`; `own` marks those drawn from the tenant's own sub-topics."""
    from store import embeddings

    async def search(query: np.ndarray) -> list[embeddings.Match]:
        # Every neighbour counts, those pointing away too (the route's default threshold, 0, would drop them).
        return await embeddings.search(tenant_id, MODEL, DIMENSION, query, limit, similarity_threshold=-1.0)

    exact = np.argsort(-(queries @ data["vectors"].T), axis=1)[:, :limit]
    for query in queries[:5]:  # warm the caches and the connection
        await search(query)
    latencies, recalls, short = [], [], 0
    for query, truth in zip(queries, exact, strict=True):
        start = time.perf_counter()
        matches = await search(query)
        latencies.append((time.perf_counter() - start) * 1000)
        short += len(matches) < limit
        recalls.append(len({match.chunk_id for match in matches} & set(data["ids"][truth])) / limit)
    latency, recall = np.array(latencies), np.array(recalls)
    return {
        "rows": data["size"],
        "path": (route := await embeddings.route_of(embeddings.CHUNKS, tenant_id, MODEL)).path,
        "ef_search": route.ef_search if route.path != "exact" else None,
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": _p95(latencies),
        "recall_at_10": round(float(recall.mean()), 4),
        "p95_ms_own": _p95(list(latency[own])),
        "recall_own": round(float(recall[own].mean()), 4),
        "p95_ms_off": _p95(list(latency[~own])),
        "recall_off": round(float(recall[~own].mean()), 4),
        "short_results": short,
    }


async def plan(tenant_id: uuid.UUID, query: np.ndarray, limit: int) -> str:
    """Which index the planner picks for the tenant's query on its HNSW path (for the report): the tenant's own
    (named by a literal, as the store does), the space's, or the (model_id, tenant) btree (an exact scan)."""
    from store import embeddings, tenant_indexes
    from store.tables import Chunk

    path = (await embeddings.route_of(embeddings.CHUNKS, tenant_id, MODEL)).path
    tenant = embeddings.literal(str(tenant_id)) if path == "tenant" else "{}"
    cast = f"::vector({DIMENSION})"
    async with Chunk._meta.db.transaction():
        await Chunk.raw("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
        rows = await Chunk.raw(
            f"EXPLAIN SELECT chunk_id FROM chunk_embedding e WHERE e.model_id = '{MODEL}' AND e.tenant = {tenant}"
            f" ORDER BY (e.embedding{cast}) <=> {{}}{cast} LIMIT {limit}",
            *([] if path == "tenant" else [tenant_id]),
            query,
        )
    text = "\n".join(row["QUERY PLAN"] for row in rows)
    names = {
        "tenant_hnsw": tenant_indexes.tenant_index_name(MODEL, tenant_id),
        "space_hnsw": embeddings.index_name(MODEL),  # a prefix of the tenants' index names: looked at after them
        "btree": "chunk_embedding_tenant",
    }
    return next((kind for kind, name in names.items() if name in text), "other")


async def load(corpus_of: Any, bulk: bool) -> tuple[dict[uuid.UUID, dict], float, float]:
    """Seed the space; the HNSW index either maintained as rows arrive (`insert`, the production path) or built
    once after the load (`bulk`, with memory enough for the graph). Returns the corpus, the load's seconds and
    the seconds of a build of the index over every row."""
    from store import embeddings
    from store.tables import Chunk

    index = embeddings.index_name(MODEL)
    if bulk:
        await Chunk.raw(f"DROP INDEX {index}")
    start = time.perf_counter()
    corpus = await corpus_of()
    load_s = time.perf_counter() - start
    await Chunk.raw("VACUUM ANALYZE chunk_embedding")
    build = f"REINDEX INDEX {index}"
    if bulk:
        build = (
            f"CREATE INDEX {index} ON chunk_embedding USING hnsw ((embedding::vector({DIMENSION})) vector_cosine_ops)"
            f" WHERE model_id = '{MODEL}'"
        )
    async with Chunk._meta.db.transaction():
        await Chunk.raw("SET LOCAL maintenance_work_mem = '1GB'")
        start = time.perf_counter()
        await Chunk.raw(build)
        build_s = time.perf_counter() - start
    await Chunk.raw("ANALYZE chunk_embedding")
    return corpus, load_s, build_s


async def measure_all(
    picks: dict[str, uuid.UUID],
    corpus: dict[uuid.UUID, dict],
    queries: dict[str, np.ndarray],
    own: np.ndarray,
    limit: int,
    label: str,
) -> dict[str, Any]:
    """`measure` for each pick, flattened (`{pick}_{figure}`), with the worst of each latency and recall."""
    figures: dict[str, Any] = {}
    for name, tenant_id in picks.items():
        result = await measure(tenant_id, corpus[tenant_id], queries[name], own, limit)
        print(f"{label} {name:15} {result}")
        figures |= {f"{name}_{key}": value for key, value in result.items()}
    of = {key: [figures[f"{name}_{key}"] for name in picks] for key in result}
    figures |= {f"worst_{key}": max(of[key]) for key in ("p95_ms", "p95_ms_own", "p95_ms_off")}
    figures |= {f"worst_{key}": min(of[key]) for key in ("recall_at_10", "recall_own", "recall_off")}
    figures["short_results"] = sum(of["short_results"])
    return figures


async def build_tenant_indexes() -> dict[uuid.UUID, float]:
    """Build what the engines' upkeep would (store/tenant_indexes.py), concurrently, the largest tenant first;
    the seconds of each build."""
    from store import tenant_indexes
    from store.tables import Chunk

    seconds = {}
    for candidate in await tenant_indexes.due():
        start = time.perf_counter()
        assert await tenant_indexes.build(candidate), "another build holds the lock"
        seconds[candidate.tenant] = round(time.perf_counter() - start, 1)
        print(f"tenant index of {candidate.rows} rows built in {seconds[candidate.tenant]} s")
    await Chunk.raw("ANALYZE chunk_embedding")
    return seconds


def at(configs: list[dict[str, Any]], setting: str, value: int) -> dict[str, Any]:
    """The measurements at the store's value of a setting (else at the first value given)."""
    return next((config for config in configs if config[setting] == value), configs[0])


def versus(space: dict[str, Any], own_index: dict[str, Any], name: str) -> dict[str, float]:
    """For one tenant, how much faster its own index is than the space's (p95 over p95) and the recall it gains,
    on its own topics and off them."""
    return {
        **{
            f"p95_speedup_{kind}": round(space[f"{name}_p95_ms_{kind}"] / own_index[f"{name}_p95_ms_{kind}"], 2)
            for kind in ("own", "off")
        },
        **{
            f"recall_gain_{kind}": round(own_index[f"{name}_recall_{kind}"] - space[f"{name}_recall_{kind}"], 4)
            for kind in ("own", "off")
        },
    }


def picks_of(corpus: dict[uuid.UUID, dict], boundary: int) -> dict[str, uuid.UUID]:
    """A small tenant, a ~5% one, the two either side of the exact/HNSW boundary, and the largest."""
    ordered = sorted(corpus, key=lambda t: corpus[t]["size"])
    below = [t for t in ordered if corpus[t]["size"] <= boundary]
    above = [t for t in ordered if corpus[t]["size"] > boundary]
    picks = {"small": ordered[len(ordered) // 4], "medium": ordered[-5], "below_boundary": below[-1]}
    return picks | ({"above_boundary": above[0]} if above else {}) | {"large": ordered[-1]}


async def run(args: argparse.Namespace) -> dict:
    from store import embeddings
    from store.database import pooled, run_migrations

    await run_migrations()
    async with pooled(4, min_size=1):
        rng = np.random.default_rng(7)
        spaces = centres(rng)
        sizes = tenant_sizes(args.rows, args.tenants)
        await embeddings.ensure_space(MODEL, DIMENSION)
        corpus, load_s, build_s = await load(lambda: seed(rng, sizes, spaces), args.load == "bulk")
        print(f"{sum(sizes)} rows over {len(sizes)} tenants {sizes}")
        print(f"load ({args.load}): {load_s:.1f} s; an HNSW build over every row: {build_s:.1f} s")

        picks = picks_of(corpus, embeddings.EXACT_MAX_ROWS)
        queries, own = {}, np.arange(args.queries) < args.queries * 4 // 5
        for name, tenant_id in picks.items():
            data = corpus[tenant_id]
            where = np.where(
                own[:, None],
                spaces[rng.choice(data["subtopics"], args.queries)],
                spaces[rng.integers(0, len(spaces), args.queries)],
            )
            queries[name] = around(rng, where)
        defaults = embeddings.EXACT_MAX_ROWS, embeddings.EF_SEARCH
        configs = []
        for exact_max_rows in args.exact_max_rows or [embeddings.EXACT_MAX_ROWS]:
            for ef_search in args.ef_search or [embeddings.EF_SEARCH]:
                embeddings.EXACT_MAX_ROWS, embeddings.EF_SEARCH = exact_max_rows, ef_search
                label = f"exact<={exact_max_rows:<6} ef={ef_search:<4}"
                settings = {"exact_max_rows": exact_max_rows, "ef_search": ef_search}
                configs.append(settings | await measure_all(picks, corpus, queries, own, args.limit, label))
        planner = {name: await plan(tenant_id, queries[name][0], args.limit) for name, tenant_id in picks.items()}

        # The upkeep's work: an index of their own for the tenants above the (default) exact-scan size.
        embeddings.EXACT_MAX_ROWS, embeddings.EF_SEARCH = defaults
        built = await build_tenant_indexes()
        indexed = {name: tenant_id for name, tenant_id in picks.items() if tenant_id in built}
        # The store's ef_search bounds (it grows with the tenant), then each fixed value asked for.
        tenant_configs = []
        for bounds in [embeddings.TENANT_EF_SEARCH, *((ef, ef) for ef in args.tenant_ef_search or [])]:
            embeddings.TENANT_EF_SEARCH = bounds
            label = f"own index  ef {bounds[0]}..{bounds[1]:<4}"
            figures = await measure_all(indexed, corpus, queries, own, args.limit, label)
            tenant_configs.append({"tenant_ef_search": list(bounds)} | figures)
        return {
            "rows": sum(sizes),
            "tenants": len(sizes),
            "load": args.load,
            "load_s": round(load_s, 1),
            "hnsw_build_s": round(build_s, 1),
            "max_scan_tuples": embeddings.MAX_SCAN_TUPLES,
            "cpus": len(os.sched_getaffinity(0)),
            "planner_on_hnsw_path": planner,
            **(configs[0] if len(configs) == 1 else {"configs": configs}),
            "tenant_indexes": {
                "build_s": {name: built[tenant_id] for name, tenant_id in indexed.items()},
                "planner": {
                    name: await plan(tenant_id, queries[name][0], args.limit) for name, tenant_id in indexed.items()
                },
                "configs": tenant_configs,
                "vs_space_index": {
                    name: versus(
                        at(configs, "ef_search", defaults[1]),
                        tenant_configs[0],
                        name,
                    )
                    for name in indexed
                },
            },
        }


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--load", choices=("insert", "bulk"), default="insert")
    parser.add_argument("--ef-search", type=_numbers, help="values to compare, e.g. 40,100,200")
    parser.add_argument("--exact-max-rows", type=_numbers, help="values to compare, e.g. 5000,10000")
    parser.add_argument("--tenant-ef-search", type=_numbers, help="values to compare on tenant indexes, e.g. 40,100")
    args = parser.parse_args()

    from store.services import local_services

    with (
        tempfile.TemporaryDirectory(prefix="scopix-search-bench-") as data_dir,
        local_services(Path(data_dir), s3=False),
    ):
        figures = asyncio.run(run(args))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
