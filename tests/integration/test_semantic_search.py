"""Semantic search over document chunks. Through the route, on documents seeded through store with real MiniLM
vectors: meaning over words, document scoping, tenant isolation, thresholds, deleted documents, validation and
a misconfigured embedder. Through store.embeddings.search, on a space shared by many tenants: the HNSW
iterative scan returns `limit` rows equal to the exact search's, and small tenants are searched exactly; large
tenants get HNSW indexes of their own from the engines' upkeep, which searches use (with the exact fallback) and
pruning drops. Then the real flow: upload, the engine's extraction and embedding, search."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.base import DefineMiddleware

from api.auth import ApiKeyAuth
from api.controllers.search import SearchController
from api.deps import DEPENDENCIES
from api.errors import EXCEPTION_HANDLERS
from api.rate_limit import RateLimiter
from cluster.model_clients import EmbedderClient
from cluster.runtime import ensure_ray
from pipelines.inference.query_embedding import QueryEmbedder
from store import documents, embeddings, model_state, tenant_indexes
from store.errors import Misconfigured
from store.tables import Chunk, File
from store.tenant_indexes import TenantIndexKeeper
from tests.support.api_calls import until_terminal, uploaded
from tests.support.callers import Caller, new_caller
from tests.support.file_rows import insert_file

pytestmark = pytest.mark.integration

DAMAGED = (
    "Damaged equipment was found in the north workshop: the conveyor motor housing is cracked and must be repaired."
)
MAINTENANCE = [
    DAMAGED,
    "Stir the onions in butter until golden, then add the garlic and let the tomato sauce simmer for twenty minutes.",
    "Tomorrow will be sunny in the morning with a light breeze; showers are expected late in the afternoon.",
    "The moon climbs slowly over silver hills, and the quiet river sings the sleeping valley into night.",
]
RECIPES = [
    "Knead the dough for ten minutes, cover it with a cloth and let it rise until it has doubled in size.",
    "The home team scored twice in the second half and won the championship in front of a sold-out stadium.",
]
BOBS = [
    "The forklift in the warehouse broke down and two packing machines were wrecked during the storm.",
    "The quarterly budget review moves to Thursday; bring the updated figures for the marketing campaign.",
]


@dataclass(frozen=True)
class Corpus:
    alice: Caller
    bob: Caller
    maintenance: uuid.UUID
    recipes: uuid.UUID
    bobs: uuid.UUID
    chunk_ids: dict[uuid.UUID, list[uuid.UUID]]  # per document, in chunk order


@pytest.fixture(scope="module")
def embedder() -> EmbedderClient:
    """The shared MiniLM actor the API embeds queries with (no CPU reserved: on 2 CPUs the engine needs both)."""
    ensure_ray(num_cpus=2)
    return EmbedderClient(num_cpus=0.0)


async def seeded_document(
    tenant_id: uuid.UUID, filename: str, texts: list[str], embedder: EmbedderClient
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A document whose chunks (one per text, on its own page) carry MiniLM vectors, as the pipeline leaves it."""
    file_id = await insert_file(tenant_id, filename)
    chunks = [
        {
            "chunk_index": index,
            "content": text,
            "chunk_type": "paragraph",
            "heading_hierarchy": [filename, f"Part {index + 1}"],
            "page_numbers": [index + 1],
            "token_count": len(text.split()),
        }
        for index, text in enumerate(texts)
    ]
    await documents.replace(file_id, tenant_id, [], chunks)
    ids = [row.id for row in await documents.chunks_of(file_id)]
    spec = embedder.spec
    await embeddings.ensure_space(spec.model_id, spec.dimension)
    await embeddings.save(spec.model_id, tenant_id, file_id, ids, await embedder.embed(texts, lane="batch"))
    return file_id, ids


@pytest.fixture(scope="module")
async def corpus(database: None, embedder: EmbedderClient) -> Corpus:
    alice, bob = await new_caller(), await new_caller()
    maintenance, maintenance_ids = await seeded_document(alice.tenant_id, "maintenance_log.txt", MAINTENANCE, embedder)
    recipes, recipe_ids = await seeded_document(alice.tenant_id, "weekend.txt", RECIPES, embedder)
    bobs, bob_ids = await seeded_document(bob.tenant_id, "bob_notes.txt", BOBS, embedder)
    chunk_ids = {maintenance: maintenance_ids, recipes: recipe_ids, bobs: bob_ids}
    return Corpus(alice, bob, maintenance, recipes, bobs, chunk_ids)


async def search(http: httpx.AsyncClient, caller: Caller, **body: Any) -> dict[str, Any]:
    response = await http.post("/api/v2/files/search", headers=caller.headers, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def contents(body: dict[str, Any]) -> list[str]:
    return [item["content"] for item in body["items"]]


async def test_a_paraphrase_finds_the_chunk_that_means_it(http, corpus, embedder) -> None:
    body = await search(http, corpus.alice, query="broken machinery")
    items = body["items"]

    assert body["query"] == "broken machinery"
    assert contents(body)[0] == DAMAGED, contents(body)
    assert items[0]["similarity_score"] > items[1]["similarity_score"] + 0.15, items
    scores = [item["similarity_score"] for item in items]
    assert scores == sorted(scores, reverse=True) and all(score > 0 for score in scores)
    assert {item["document_id"] for item in items} <= {str(corpus.maintenance), str(corpus.recipes)}
    assert body["total_count"] == len(items) and isinstance(body["search_time_ms"], int)
    assert items[0] == {
        "chunk_id": str(corpus.chunk_ids[corpus.maintenance][0]),
        "document_id": str(corpus.maintenance),
        "document_filename": "maintenance_log.txt",
        "chunk_index": 0,
        "content": DAMAGED,
        "page_numbers": [1],
        "heading_hierarchy": ["maintenance_log.txt", "Part 1"],
        "similarity_score": items[0]["similarity_score"],
        "metadata": {"chunk_type": "paragraph"},
    }
    query, chunk = await embedder.embed(["broken machinery", DAMAGED])
    assert items[0]["similarity_score"] == pytest.approx(float(query @ chunk), abs=1e-4)


async def test_document_ids_scope_the_search(http, corpus) -> None:
    alice, recipes = corpus.alice, str(corpus.recipes)
    everything = await search(http, alice, query="broken machinery")
    both = await search(http, alice, query="broken machinery", document_ids=[str(corpus.maintenance), recipes])
    scoped = await search(http, alice, query="broken machinery", document_ids=[recipes, recipes])
    bobs = await search(http, alice, query="broken machinery", document_ids=[str(corpus.bobs)])
    unknown = await search(http, alice, query="broken machinery", document_ids=[str(uuid.uuid4())])

    assert both["items"] == everything["items"] and DAMAGED in contents(everything)
    assert scoped["items"] and set(contents(scoped)) <= set(RECIPES)
    assert {item["document_id"] for item in scoped["items"]} == {recipes}
    assert bobs["items"] == [] and bobs["total_count"] == 0
    assert unknown["items"] == []


async def test_tenants_never_see_each_others_chunks(http, corpus) -> None:
    for_bob = await search(http, corpus.bob, query="broken machinery")
    for_alice = await search(http, corpus.alice, query="forklift broke down in the warehouse storm")

    assert contents(for_bob)[0] == BOBS[0]
    assert {item["document_id"] for item in for_bob["items"]} == {str(corpus.bobs)}
    assert str(corpus.bobs) not in {item["document_id"] for item in for_alice["items"]}
    assert not set(BOBS) & set(contents(for_alice))


async def test_similarity_threshold_and_limit(http, corpus, embedder) -> None:
    everything = (await search(http, corpus.alice, query="broken machinery"))["items"]
    cut = (everything[0]["similarity_score"] + everything[1]["similarity_score"]) / 2
    above = await search(http, corpus.alice, query="broken machinery", similarity_threshold=cut)
    identical_only = await search(http, corpus.alice, query="broken machinery", similarity_threshold=1.0)
    first_two = await search(http, corpus.alice, query="broken machinery", limit=2)
    query, *chunks = await embedder.embed(["broken machinery", *MAINTENANCE, *RECIPES])

    # The default threshold, 0, keeps exactly the chunks that point the query's way.
    assert sorted(item["content"] for item in everything) == sorted(
        text for text, chunk in zip(MAINTENANCE + RECIPES, chunks, strict=True) if query @ chunk >= 0
    )
    assert len(everything) < len(MAINTENANCE) + len(RECIPES), "some chunks point away"
    assert contents(above) == [DAMAGED] and above["total_count"] == 1
    assert identical_only["items"] == []
    assert first_two["items"] == everything[:2]


async def test_a_deleted_documents_chunks_disappear_until_it_is_restored(http, embedder) -> None:
    carol = await new_caller()
    file_id, _ = await seeded_document(carol.tenant_id, "inspection.txt", [DAMAGED], embedder)
    assert contents(await search(http, carol, query="broken machinery")) == [DAMAGED]

    deleted = await http.delete(f"/api/v2/files/{file_id}", headers=carol.headers)
    assert deleted.status_code == 200, deleted.text
    assert (await search(http, carol, query="broken machinery"))["items"] == []
    scoped = await search(http, carol, query="broken machinery", document_ids=[str(file_id)])
    assert scoped["items"] == []

    restored = await http.post(f"/api/v2/files/{file_id}/restore", headers=carol.headers)
    assert restored.status_code == 200, restored.text
    assert contents(await search(http, carol, query="broken machinery")) == [DAMAGED]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": ""},
        {"query": "   \n\t "},
        {"query": "q" * 1001},
        {"query": "pumps\u0000"},
        {"query": 42},
        {"query": "pumps", "limit": 0},
        {"query": "pumps", "limit": 101},
        {"query": "pumps", "limit": "ten"},
        {"query": "pumps", "similarity_threshold": -0.1},
        {"query": "pumps", "similarity_threshold": 1.5},
        {"query": "pumps", "document_ids": []},
        {"query": "pumps", "document_ids": ["not-a-uuid"]},
        {"query": "pumps", "document_ids": [str(uuid.uuid4()) for _ in range(101)]},
        {"query": "pumps", "colour": "red"},
    ],
)
async def test_invalid_bodies_are_422(http, corpus, body) -> None:
    response = await http.post("/api/v2/files/search", headers=corpus.alice.headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


async def test_the_longest_query_and_other_edges_are_served(http, corpus) -> None:
    longest = await search(http, corpus.alice, query=("broken machinery " * 59)[:1000])
    assert len(longest["query"]) == 1000 and contents(longest)[0] == DAMAGED
    ids = [str(corpus.maintenance)] + [str(uuid.uuid4()) for _ in range(99)]
    hundred = await search(http, corpus.alice, query="broken machinery", document_ids=ids, limit=100)
    assert contents(hundred)[0] == DAMAGED
    assert {item["document_id"] for item in hundred["items"]} == {str(corpus.maintenance)}


async def test_requests_without_a_key_or_json_are_refused(http, corpus) -> None:
    assert (await http.post("/api/v2/files/search", json={"query": "pumps"})).status_code == 401
    garbled = await http.post("/api/v2/files/search", headers=corpus.alice.headers, content=b"{not json")
    assert garbled.status_code == 400


async def test_a_misconfigured_embedder_is_a_500_and_a_bad_query_still_a_4xx(services, server, caplog) -> None:
    """A configured model this machine lacks, found at run time, is the operator's to fix: a 500 that says nothing
    of it, the reason logged at ERROR; a bad query is still the client's 4xx (the app's routes and error mapping,
    served in process; the database pool is the session server's)."""
    missing = QueryEmbedder(services.replace(models__embed_text__model="/nonexistent/embedding-model"))
    with pytest.raises(Misconfigured):
        await missing.embed("pumps")
    caller = await new_caller()
    app = Litestar(
        route_handlers=[SearchController],
        dependencies={**DEPENDENCIES, "embedder": Provide(lambda: missing, sync_to_thread=False)},
        middleware=[DefineMiddleware(ApiKeyAuth)],
        exception_handlers=EXCEPTION_HANDLERS,
        state=State({"key_limiter": RateLimiter(per_minute=600, burst=100)}),  # the auth middleware's
    )
    url = "/api/v2/files/search"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://in-process") as client:
        errors_log = logging.getLogger("api.errors")  # the server's logging config may keep it from the root
        errors_log.addHandler(caplog.handler)
        try:
            response = await client.post(url, headers=caller.headers, json={"query": "pumps"})
        finally:
            errors_log.removeHandler(caplog.handler)
        empty = await client.post(url, headers=caller.headers, json={"query": ""})
        negative = await client.post(url, headers=caller.headers, json={"query": "pumps", "limit": -1})
    assert response.status_code == 500, response.text
    assert response.json() == {"detail": "internal server error", "code": "misconfigured", "status_code": 500}
    logged = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert any("/nonexistent/embedding-model" in message for message in logged), logged
    assert (empty.status_code, negative.status_code) == (422, 422), (empty.text, negative.text)


# --- the store's search on a space shared by many tenants ---------------------------------------------------

DIMENSION = 32
LIMIT = 20


@dataclass(frozen=True)
class Crowd:
    model_id: str
    tenant_id: uuid.UUID  # the searched tenant: 3% of the space
    chunk_ids: np.ndarray
    vectors: np.ndarray
    queries: np.ndarray


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


async def seeded_tenant(
    model_id: str, centres: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[uuid.UUID, np.ndarray, np.ndarray]:
    """A new tenant with one document of `size` chunks in the model's space, their vectors drawn about 8 of the
    `centres`; its chunk ids and vectors."""
    tenant = (await new_caller()).tenant_id
    vectors = unit(
        centres[rng.choice(rng.choice(len(centres), 8, replace=False), size)] + 0.4 * rng.normal(size=(size, DIMENSION))
    )
    file_id = await insert_file(tenant, "vectors.txt")
    chunks = [
        {"chunk_index": i, "content": f"chunk {i}", "chunk_type": "paragraph", "heading_hierarchy": [],
         "page_numbers": [1], "token_count": 2}
        for i in range(size)
    ]  # fmt: skip
    await documents.replace(file_id, tenant, [], chunks)
    ids = [row.id for row in await documents.chunks_of(file_id)]
    await embeddings.save(model_id, tenant, file_id, ids, vectors)
    return tenant, np.array(ids), vectors


@pytest.fixture(scope="module")
async def crowd(database: None) -> Crowd:
    """~6000 clustered vectors of 30 tenants in a test model's space; each tenant draws from 8 of 40 clusters."""
    rng = np.random.default_rng(11)
    centres = unit(rng.normal(size=(40, DIMENSION)))
    model_id = f"test/clustered-{DIMENSION}-{uuid.uuid4().hex[:8]}"
    await embeddings.ensure_space(model_id, DIMENSION)
    seeded = [await seeded_tenant(model_id, centres, 180 if number == 0 else 200, rng) for number in range(30)]
    await Chunk.raw("ANALYZE chunk_embedding")
    tenant, ids, vectors = seeded[0]
    queries = unit(centres[rng.integers(0, 40, 12)] + 0.4 * rng.normal(size=(12, DIMENSION)))
    return Crowd(model_id, tenant, ids, vectors, queries)


@dataclass(frozen=True)
class Plan:
    iterative: bool  # run with the HNSW path's settings (hnsw.iterative_scan ...)
    text: str

    @property
    def walks_hnsw(self) -> bool:
        return "chunk_embedding_hnsw_" in self.text


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> list[Plan]:
    """The plan of every nearest-neighbour query the store runs. On the HNSW path sorting is priced out, so
    Postgres walks the HNSW index even where the tenant's btree would be cheaper (this space is small)."""
    recorded: list[Plan] = []
    original = Chunk.raw
    iterative = False

    async def raw(sql: str, *args: Any) -> Any:
        nonlocal iterative
        if "hnsw.iterative_scan" in sql:
            iterative = True
            sql = sql.replace("SELECT ", "SELECT set_config('enable_sort', 'off', true), ", 1)
        elif "WITH nearest" in sql:
            rows = await original("EXPLAIN " + sql, *args)
            recorded.append(Plan(iterative, "\n".join(row["QUERY PLAN"] for row in rows)))
            iterative = False
        return await original(sql, *args)

    monkeypatch.setattr(Chunk, "raw", raw)
    return recorded


def exact_top(crowd: Crowd, query: np.ndarray) -> list[uuid.UUID]:
    return list(crowd.chunk_ids[np.argsort(-(crowd.vectors @ query))[:LIMIT]])


async def test_a_filtered_hnsw_search_still_returns_limit_rows(crowd, plans, monkeypatch) -> None:
    monkeypatch.setattr(embeddings, "EXACT_MAX_ROWS", 50)
    vectors = dict(zip(crowd.chunk_ids, crowd.vectors, strict=True))
    recalls = []
    for query in crowd.queries:
        matches = await embeddings.search(crowd.tenant_id, crowd.model_id, DIMENSION, query, LIMIT)
        assert len(matches) == LIMIT
        assert [m.similarity for m in matches] == sorted((m.similarity for m in matches), reverse=True)
        for match in matches:
            assert match.similarity == pytest.approx(float(vectors[match.chunk_id] @ query), abs=1e-5)
        recalls.append(len({m.chunk_id for m in matches} & set(exact_top(crowd, query))) / LIMIT)

    assert len(plans) == len(crowd.queries), "no search fell back to the exact scan"
    assert all(plan.iterative and plan.walks_hnsw for plan in plans), plans[0].text
    assert np.mean(recalls) >= 0.95, recalls


async def test_an_iterative_scan_that_gives_up_early_falls_back_to_exact(crowd, plans, monkeypatch) -> None:
    monkeypatch.setattr(embeddings, "EXACT_MAX_ROWS", 50)
    # The walk stops after its first pass of EF_SEARCH candidates and hands back what it visited; a filter that
    # 40 of the ~6000 vectors pass leaves it a few rows where LIMIT are asked (pgvector returns the candidates
    # it discarded too, so without the filter the count left over depends on how the graph was built).
    monkeypatch.setattr(embeddings, "EF_SEARCH", 10)
    monkeypatch.setattr(embeddings, "MAX_SCAN_TUPLES", 1)
    chosen = list(crowd.chunk_ids[:40])
    few = Crowd(crowd.model_id, crowd.tenant_id, crowd.chunk_ids[:40], crowd.vectors[:40], crowd.queries)
    for query in crowd.queries[:4]:
        rows = await embeddings.nearest(
            embeddings.CHUNKS, crowd.tenant_id, crowd.model_id, DIMENSION, query, LIMIT,
            filters=(("e.chunk_id = ANY({}::uuid[])", chosen),),
        )  # fmt: skip
        assert [row["chunk_id"] for row in rows] == exact_top(few, query)

    assert [(plan.iterative, plan.walks_hnsw) for plan in plans] == [(True, True), (False, False)] * 4


async def test_a_tenant_below_the_threshold_is_searched_exactly(crowd, plans) -> None:
    assert len(crowd.chunk_ids) <= embeddings.EXACT_MAX_ROWS
    for query in crowd.queries[:4]:
        matches = await embeddings.search(crowd.tenant_id, crowd.model_id, DIMENSION, query, LIMIT)
        assert [m.chunk_id for m in matches] == exact_top(crowd, query)
    scoped = await embeddings.search(
        crowd.tenant_id, crowd.model_id, DIMENSION, crowd.queries[0], LIMIT, document_ids=[uuid.uuid4()]
    )

    assert scoped == []
    assert [(plan.iterative, plan.walks_hnsw) for plan in plans] == [(False, False)] * 5


# --- per-tenant HNSW indexes of large tenants ---------------------------------------------------------------

INDEX_MIN_ROWS = 300  # the test's exact-scan size: tenants above it get an index of their own


@dataclass(frozen=True)
class Tenants:
    model_id: str
    seeded: dict[uuid.UUID, tuple[np.ndarray, np.ndarray]]  # chunk ids and vectors per tenant
    large: list[uuid.UUID]  # the two above INDEX_MIN_ROWS
    queries: np.ndarray  # about any of the clusters: mostly far from a tenant's own 8


@pytest.fixture(scope="module")
async def tenants(database: None) -> Tenants:
    """A space of two tenants of 800 vectors and eight of 150, from 40 clusters; the engines' upkeep (its keeper,
    told that tenants above INDEX_MIN_ROWS are large) has built an index for each large tenant."""
    rng = np.random.default_rng(12)
    centres = unit(rng.normal(size=(40, DIMENSION)))
    model_id = f"test/tenant-indexed-{DIMENSION}-{uuid.uuid4().hex[:8]}"
    await embeddings.ensure_space(model_id, DIMENSION)
    seeded = [await seeded_tenant(model_id, centres, size, rng) for size in (800, 800, *[150] * 8)]
    await Chunk.raw("ANALYZE chunk_embedding")
    keeper = TenantIndexKeeper(check_seconds=3600, min_rows=INDEX_MIN_ROWS)
    for _ in range(10):  # one build per call: the largest first, then at once the next
        await keeper()
        if not [due for due in await tenant_indexes.due(INDEX_MIN_ROWS) if due.model_id == model_id]:
            break
    queries = unit(centres[rng.integers(0, 40, 16)] + 0.4 * rng.normal(size=(16, DIMENSION)))
    return Tenants(
        model_id, {tenant: (ids, vectors) for tenant, ids, vectors in seeded}, [seeded[0][0], seeded[1][0]], queries
    )


async def indexes_of(model_id: str) -> dict[str, bool]:
    """The space's tenant indexes in the catalog, and whether each is valid."""
    rows = await Chunk.raw(
        "SELECT c.relname, i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid"
        " WHERE starts_with(c.relname, {})",
        embeddings.index_name(model_id) + "_",
    )
    return {row["relname"]: row["indisvalid"] for row in rows}


async def test_the_upkeep_builds_an_index_for_each_large_tenant(tenants, monkeypatch) -> None:
    rows = await Chunk.raw(
        "SELECT tenant, index_name, rows_at_build FROM tenant_index WHERE model_id = {}", tenants.model_id
    )
    names = {tenant: tenant_indexes.tenant_index_name(tenants.model_id, tenant) for tenant in tenants.large}
    assert {(row["tenant"], row["index_name"], row["rows_at_build"]) for row in rows} == {
        (tenant, names[tenant], 800) for tenant in tenants.large
    }
    assert await indexes_of(tenants.model_id) == dict.fromkeys(names.values(), True)
    for tenant in tenants.seeded:
        expected = "tenant" if tenant in tenants.large else "exact"
        assert (await embeddings.route_of(embeddings.CHUNKS, tenant, tenants.model_id)).path == expected
    # The walk of a tenant's own index grows with the tenant (its 800 rows at build), within bounds.
    for rows_per_ef, bounds, ef_search in [(40, (200, 800), 200), (2, (200, 800), 400), (2, (100, 300), 300)]:
        monkeypatch.setattr(embeddings, "TENANT_ROWS_PER_EF", rows_per_ef)
        monkeypatch.setattr(embeddings, "TENANT_EF_SEARCH", bounds)
        route = await embeddings.route_of(embeddings.CHUNKS, tenants.large[0], tenants.model_id)
        assert route == embeddings.Route("tenant", ef_search)


async def nearest_of(tenants: Tenants, tenant: uuid.UUID, query: np.ndarray) -> list[embeddings.Match]:
    """The tenant's LIMIT nearest chunks, those pointing away too."""
    return await embeddings.search(tenant, tenants.model_id, DIMENSION, query, LIMIT, similarity_threshold=-1)


def exact_of(tenants: Tenants, tenant: uuid.UUID, query: np.ndarray) -> list[uuid.UUID]:
    ids, vectors = tenants.seeded[tenant]
    return list(ids[np.argsort(-(vectors @ query))[:LIMIT]])


async def test_a_large_tenant_is_searched_through_its_own_index(tenants, plans) -> None:
    """Each search walks the tenant's own index (no fallback), returns LIMIT of its own chunks with their true
    similarities, and finds the exact top LIMIT but for a few, for queries far from its topics too."""
    recalls = []
    for tenant in tenants.large:
        own = tenant_indexes.tenant_index_name(tenants.model_id, tenant)
        vectors = dict(zip(*tenants.seeded[tenant], strict=True))
        for query in tenants.queries:
            matches = await nearest_of(tenants, tenant, query)
            assert len(matches) == LIMIT
            assert [m.similarity for m in matches] == sorted((m.similarity for m in matches), reverse=True)
            assert all(match.chunk_id in vectors for match in matches), "another tenant's chunk"
            for match in matches:
                assert match.similarity == pytest.approx(float(vectors[match.chunk_id] @ query), abs=1e-5)
            recalls.append(len({m.chunk_id for m in matches} & set(exact_of(tenants, tenant, query))) / LIMIT)
            assert plans[-1].iterative and own in plans[-1].text, plans[-1].text

    assert len(plans) == len(tenants.large) * len(tenants.queries), "no search fell back to the exact scan"
    assert np.mean(recalls) >= 0.95, recalls


async def test_a_tenant_index_walk_that_comes_up_short_falls_back_to_exact(tenants, plans, monkeypatch) -> None:
    """A tenant whose documents near the query are deleted: the walk of its own index (told to give up early)
    finds too few live chunks, so the search runs exactly and returns the live ones, which point away."""
    rng = np.random.default_rng(13)
    query = tenants.queries[0]
    tenant, gone_ids, _ = await seeded_tenant(tenants.model_id, np.repeat(query[None, :], 8, axis=0), 400, rng)
    live_file = await insert_file(tenant, "away.txt")
    chunks = [
        {"chunk_index": i, "content": f"away {i}", "chunk_type": "paragraph", "heading_hierarchy": [],
         "page_numbers": [1], "token_count": 2}
        for i in range(LIMIT + 5)
    ]  # fmt: skip
    await documents.replace(live_file, tenant, [], chunks)
    live_ids = [row.id for row in await documents.chunks_of(live_file)]
    away = unit(-query + 0.4 * rng.normal(size=(len(live_ids), DIMENSION)))
    await embeddings.save(tenants.model_id, tenant, live_file, live_ids, away)
    candidate = tenant_indexes.Candidate(embeddings.CHUNKS, tenants.model_id, DIMENSION, tenant, 425)
    assert await tenant_indexes.build(candidate)
    gone = {row["file_id"] for row in await Chunk.raw("SELECT file_id FROM chunk WHERE id = {}", gone_ids[0])}
    await File.update({File.deleted_at: datetime.now(UTC)}).where(File.id.is_in(list(gone)))
    monkeypatch.setattr(embeddings, "TENANT_EF_SEARCH", (10, 10))  # the walk takes 10 candidates, then stops
    monkeypatch.setattr(embeddings, "MAX_SCAN_TUPLES", 1)

    matches = await embeddings.search(tenant, tenants.model_id, DIMENSION, query, LIMIT, similarity_threshold=-1)
    assert [m.chunk_id for m in matches] == [live_ids[i] for i in np.argsort(-(away @ query))[:LIMIT]]
    assert [(plan.iterative, candidate.index in plan.text) for plan in plans] == [(True, True), (False, False)]


async def test_pruning_a_space_drops_its_tenant_indexes(tenants, embedder) -> None:
    """Drops every chunk space but MiniLM's (the settings' model of a task without a row), this one's too."""
    assert len(await indexes_of(tenants.model_id)) >= 2
    dropped = await model_state.prune(f"test-{uuid.uuid4().hex[:8]}", embeddings.CHUNKS, embedder.spec.model_id)

    assert dropped[tenants.model_id] >= sum(len(ids) for ids, _ in tenants.seeded.values())
    assert await indexes_of(tenants.model_id) == {}
    assert await Chunk.raw("SELECT 1 FROM tenant_index WHERE model_id = {}", tenants.model_id) == []
    assert (await embeddings.route_of(embeddings.CHUNKS, tenants.large[0], tenants.model_id)).path == "exact"
    assert embedder.spec.model_id not in dropped


async def test_a_prune_waits_for_a_running_index_build_and_holds_off_new_ones(database: None, embedder) -> None:
    """A build holds the cluster's build lock (here: this test, for a build): the prune starts no transaction until
    the lock is free, then holds it, so no build starts while spaces and their indexes are dropped."""
    model_id = f"test/pruned-{DIMENSION}-{uuid.uuid4().hex[:8]}"
    await embeddings.ensure_space(model_id, DIMENSION)
    rng = np.random.default_rng(14)
    tenant, ids, _ = await seeded_tenant(model_id, unit(rng.normal(size=(8, DIMENSION))), 50, rng)
    building = await Chunk._meta.db.get_new_connection()
    await building.fetchval("SELECT pg_advisory_lock(hashtextextended($1, 0))", tenant_indexes.BUILD_LOCK)
    kept = embedder.spec.model_id  # the space the other tests use
    prune = asyncio.create_task(model_state.prune(f"test-{uuid.uuid4().hex[:8]}", embeddings.CHUNKS, kept))
    await asyncio.sleep(1.5)
    assert not prune.done()
    space = "SELECT 1 FROM embedding_space WHERE model_id = {}"
    assert await Chunk.raw(space, model_id) != []  # nothing dropped yet

    await building.close()  # the build ends
    async with tenant_indexes.builds_paused():  # what the prune holds: a build now finds the lock taken
        candidate = tenant_indexes.Candidate(embeddings.CHUNKS, model_id, DIMENSION, tenant, len(ids))
        assert not await tenant_indexes.build(candidate)
    assert (await asyncio.wait_for(prune, 60))[model_id] == len(ids)
    assert await Chunk.raw(space, model_id) == []


# --- the real flow --------------------------------------------------------------------------------------------


async def test_uploaded_documents_are_searchable_once_processed(http, engine) -> None:
    dave = await new_caller()
    texts = {
        "workshop.txt": f"Workshop report\n\n{DAMAGED}\n\nThe replacement part arrives on Monday.\n",
        "kitchen.txt": "Kitchen notes\n\n" + MAINTENANCE[1] + "\n\n" + RECIPES[0] + "\n",
    }
    ids = {name: await uploaded(http, dave, text.encode(), name) for name, text in texts.items()}
    for file_id in ids.values():
        final = await until_terminal(http, dave, file_id, seconds=180)
        assert final["unified_status"] == "completed", final
        assert final["component_statuses"]["embedding_status"] == "completed", final

    body = await search(http, dave, query="broken machinery")
    top = body["items"][0]
    assert top["document_id"] == ids["workshop.txt"] and top["document_filename"] == "workshop.txt"
    assert DAMAGED in top["content"] and top["page_numbers"] == [1]
    assert {item["document_id"] for item in body["items"]} == set(ids.values())
    kitchen = await search(http, dave, query="how to bake bread", document_ids=[ids["kitchen.txt"]])
    assert kitchen["items"] and {item["document_id"] for item in kitchen["items"]} == {ids["kitchen.txt"]}
