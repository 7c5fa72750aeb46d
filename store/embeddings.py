"""Embeddings in pgvector, one space per model and table (chunk_embedding: document chunks; image_embedding:
images, store/image_embeddings.py; video_frame_embedding: videos' key frames, store/frame_embeddings.py), and the
tenant-scoped nearest-neighbour search over them.

Every row carries its `model_id`; a space gets a partial HNSW index on `embedding::vector(dim)` for its model
on its table when it is first written (`ensure_space`). A search names its model, so spaces never mix.

Filtered HNSW scans can return fewer rows than LIMIT when the filter (the tenant) is selective: the graph
walk stops after `ef_search` candidates. So a tenant with few vectors (or a search scoped to documents) is
searched exactly (a sequential distance over its rows through the (model_id, tenant) index: exact, and fast
at that size). A larger tenant gets an HNSW index of its own in the space (store/tenant_indexes.py, built by
the engines' upkeep), whose every candidate passes the tenant filter: fast and with good recall even for
queries far from the tenant's topics. Until it has one, it is searched through the space's index with
pgvector's iterative scans (`relaxed_order`), which keep walking the graph until LIMIT rows pass the filter.
The outer query restores the exact order. Should a walk give up first (MAX_SCAN_TUPLES, a tenant whose vectors
lie far from the query among many others', or whose files are deleted), the search is run exactly, so that a
search never returns fewer rows than the tenant has, up to LIMIT. (On an HNSW path the planner may still pick
the tenant's btree, an exact scan, where its costs say that is cheaper.)
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from store.tables import Chunk

EXACT_MAX_ROWS = 10_000  # a tenant with at most this many vectors in the space is searched exactly
EF_SEARCH = 200  # the space's index: recall@10 ~0.98 on a tenant's own topics (benchmarks/search.py); 100: ~0.96
# A tenant's own index, where every candidate passes the filter: ef_search grows with the tenant (its rows when
# the index was built / TENANT_ROWS_PER_EF, within these bounds). On its own topics recall@10 is 1.0 from 200 on;
# queries far from them have many nearly tied neighbours, and a larger graph needs a longer walk to find them:
# recall@10 on those at 200 / 400 / 800, 12k rows: 0.99 / 0.99 / 1.0, 30k rows: 0.66-0.76 / 0.82-0.86 / 0.90-0.94,
# at up to 1.6x / 2.8x the p50 of 200 (benchmarks/search.py, 2 busy cores).
TENANT_EF_SEARCH = (200, 800)
TENANT_ROWS_PER_EF = 40
MAX_SCAN_TUPLES = 40_000
CHUNKS, IMAGES, FRAMES = "chunk_embedding", "image_embedding", "video_frame_embedding"
# The tables of embedding spaces and the columns that identify their rows (the first one breaks ties).
KEYS: dict[str, tuple[str, ...]] = {
    CHUNKS: ("chunk_id", "file_id"),
    IMAGES: ("file_id",),
    FRAMES: ("file_id", "frame_index"),
}
SearchPath = Literal["exact", "tenant", "space"]


@dataclass(frozen=True)
class Match:
    chunk_id: uuid.UUID
    file_id: uuid.UUID
    similarity: float  # cosine similarity, 1 = same direction


@dataclass(frozen=True)
class Route:
    """How a search reaches a tenant's nearest rows: exactly, through its own HNSW index or through the space's
    (with this ef_search)."""

    path: SearchPath
    ef_search: int = 0


def index_name(model_id: str, table: str = CHUNKS) -> str:
    return f"{table}_hnsw_{hashlib.sha256(model_id.encode()).hexdigest()[:16]}"


def literal(text: str) -> str:
    """A SQL string literal (index predicates and planner-visible constants cannot be bind parameters)."""
    return "'" + text.replace("'", "''") + "'"


async def ensure_space(model_id: str, dimension: int, table: str = CHUNKS) -> None:
    """Register the model's space in `table` and build its HNSW index, once; a space's dimension never changes."""
    _check_table(table)
    name = index_name(model_id, table)
    async with Chunk._meta.db.transaction():
        await Chunk.raw("SELECT pg_advisory_xact_lock(hashtextextended({}, 0))", f"space:{table}:{model_id}")
        rows = await Chunk.raw(
            "SELECT dimension FROM embedding_space WHERE table_name = {} AND model_id = {}", table, model_id
        )
        if rows:
            if rows[0]["dimension"] != dimension:
                raise ValueError(f"{model_id} is stored with {rows[0]['dimension']} dimensions, not {dimension}")
            return
        await Chunk.raw(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING hnsw "
            f"((embedding::vector({int(dimension)})) vector_cosine_ops) WHERE model_id = {literal(model_id)}"
        )
        await Chunk.raw(
            "INSERT INTO embedding_space (table_name, model_id, dimension, index_name) VALUES ({}, {}, {}, {})",
            table,
            model_id,
            dimension,
            name,
        )


def _check_table(table: str) -> None:
    """Table names go into SQL as identifiers: only the spaces' own tables."""
    if table not in KEYS:
        raise ValueError(f"{table!r} holds no embedding spaces; one of {sorted(KEYS)}")


async def save(
    model_id: str, tenant_id: uuid.UUID, file_id: uuid.UUID, chunk_ids: Sequence[uuid.UUID], vectors: np.ndarray
) -> None:
    """Store the vectors of a document's chunks in the model's space and mark the chunks embedded; joins the
    caller's transaction. Saving again replaces (an interrupted job that runs twice writes the same rows)."""
    async with Chunk._meta.db.transaction():
        await Chunk.raw(
            """
            INSERT INTO chunk_embedding (chunk_id, model_id, tenant, file_id, embedding)
            SELECT e.chunk_id, {}, {}, {}, e.embedding::vector
            FROM unnest({}::uuid[], {}::text[]) AS e(chunk_id, embedding)
            ON CONFLICT (chunk_id, model_id) DO UPDATE SET embedding = excluded.embedding, created_at = now()
            """,
            model_id,
            tenant_id,
            file_id,
            list(chunk_ids),
            [vector_text(vector) for vector in vectors],  # asyncpg's pgvector codec encodes no arrays of vectors
        )
        await Chunk.update({Chunk.embedding_status: "completed"}).where(Chunk.id.is_in(list(chunk_ids)))


def vector_text(vector: np.ndarray) -> str:
    """pgvector's text form, exact for float32."""
    return "[" + ",".join(repr(float(x)) for x in np.asarray(vector, np.float32)) + "]"


async def unembedded(file_id: uuid.UUID, model_id: str) -> list[dict[str, Any]]:
    """The document's chunks without a vector in the model's space (id, content, heading_hierarchy)."""
    rows: list[dict[str, Any]] = await Chunk.raw(
        """
        SELECT c.id, c.content, c.heading_hierarchy FROM chunk c
        WHERE c.file_id = {} AND NOT EXISTS (
            SELECT 1 FROM chunk_embedding e WHERE e.chunk_id = c.id AND e.model_id = {})
        ORDER BY c.chunk_index
        """,
        file_id,
        model_id,
    )
    return rows


async def vectors_of(
    file_id: uuid.UUID, model_id: str, chunk_ids: Sequence[uuid.UUID] | None = None
) -> dict[uuid.UUID, list[float]]:
    """The document's vectors in the model's space by chunk id: all of them, or those of `chunk_ids`."""
    sql = "SELECT chunk_id, embedding FROM chunk_embedding WHERE file_id = {} AND model_id = {}"
    if chunk_ids is None:
        rows = await Chunk.raw(sql, file_id, model_id)
    else:
        rows = await Chunk.raw(sql + " AND chunk_id = ANY({}::uuid[])", file_id, model_id, list(chunk_ids))
    return {row["chunk_id"]: row["embedding"].to_list() for row in rows}


_LIVE_FILE = "NOT EXISTS (SELECT 1 FROM file f WHERE f.id = e.file_id AND f.deleted_at IS NOT NULL)"


async def search(
    tenant_id: uuid.UUID,
    model_id: str,
    dimension: int,
    query: np.ndarray,
    limit: int,
    *,
    similarity_threshold: float = 0.0,
    document_ids: Sequence[uuid.UUID] | None = None,
) -> list[Match]:
    """The tenant's `limit` chunks nearest to `query` in the model's space (live files only), most similar
    first, at least `similarity_threshold` similar; `document_ids` restricts to those documents."""
    filters = () if document_ids is None else (("e.file_id = ANY({}::uuid[])", list(document_ids)),)
    rows = await nearest(
        CHUNKS, tenant_id, model_id, dimension, query, limit, filters=filters, exact=document_ids is not None
    )
    return [
        Match(row["chunk_id"], row["file_id"], float(row["similarity"]))
        for row in rows
        if row["similarity"] >= similarity_threshold
    ]


async def nearest(
    table: str,
    tenant_id: uuid.UUID,
    model_id: str,
    dimension: int,
    query: np.ndarray,
    limit: int,
    *,
    filters: Sequence[tuple[str, Any]] = (),
    exact: bool = False,
) -> list[dict[str, Any]]:
    """The tenant's `limit` rows of `table` nearest to `query` in the model's space (live files only), most
    similar first: their key columns and `similarity`. `filters` are further conditions on `e`, each with one
    bind parameter; `exact` skips HNSW (a search scoped to a few files)."""
    _check_table(table)
    route = Route("exact") if exact else await route_of(table, tenant_id, model_id)
    rows = await _nearest(table, tenant_id, model_id, dimension, query, limit, filters, route)
    if route.path != "exact" and len(rows) < limit:
        # The iterative scan stopped at MAX_SCAN_TUPLES before `limit` rows passed the filters (the tenant's
        # vectors are far from the query among many others', or its files are deleted): the exact scan never
        # returns short.
        rows = await _nearest(table, tenant_id, model_id, dimension, query, limit, filters, Route("exact"))
    return rows


async def route_of(table: str, tenant_id: uuid.UUID, model_id: str) -> Route:
    """How the tenant is searched in the space: through its own HNSW index when it has one, else exactly when
    it has at most EXACT_MAX_ROWS vectors, else through the space's index. One round trip; the count (an
    index-only scan of at most EXACT_MAX_ROWS + 1 entries) runs only for tenants without an index."""
    _check_table(table)
    rows = await Chunk.raw(
        f"""
        SELECT t.rows_at_build, CASE
            WHEN t.tenant IS NOT NULL THEN 'tenant'
            WHEN (SELECT count(*) FROM (SELECT 1 FROM {table} e WHERE e.model_id = {{}} AND e.tenant = {{}}
                LIMIT {{}}) AS capped) <= {{}} THEN 'exact'
            ELSE 'space' END AS path
        FROM (SELECT 1) AS one
        LEFT JOIN tenant_index t ON t.table_name = {{}} AND t.model_id = {{}} AND t.tenant = {{}}
        """,
        model_id,
        tenant_id,
        EXACT_MAX_ROWS + 1,
        EXACT_MAX_ROWS,
        table,
        model_id,
        tenant_id,
    )
    if rows[0]["path"] != "tenant":
        return Route(rows[0]["path"], EF_SEARCH)
    low, high = TENANT_EF_SEARCH
    return Route("tenant", min(max(rows[0]["rows_at_build"] // TENANT_ROWS_PER_EF, low), high))


async def _nearest(
    table: str,
    tenant_id: uuid.UUID,
    model_id: str,
    dimension: int,
    query: np.ndarray,
    limit: int,
    filters: Sequence[tuple[str, Any]],
    route: Route,
) -> list[dict[str, Any]]:
    """The `limit` nearest rows, exactly (a distance over the rows the filters select) or through an HNSW index
    with an iterative scan, whose `relaxed_order` the outer query puts right. The tenant's own index serves
    only a query that names the tenant as a literal (the planner matches an index predicate to constants)."""
    path = route.path
    tenant = f"e.tenant = {literal(str(tenant_id))}" if path == "tenant" else "e.tenant = {}"
    where = [f"e.model_id = {literal(model_id)}", tenant, _LIVE_FILE, *(condition for condition, _ in filters)]
    args: list[Any] = [*([] if path == "tenant" else [tenant_id]), *(value for _, value in filters)]
    keys = ", ".join(KEYS[table])
    # The HNSW indexes serve only their own expression, the cast; the exact path orders by the plain distance.
    cast = f"::vector({int(dimension)})"
    distance = "e.embedding <=> {}" if path == "exact" else f"(e.embedding{cast}) <=> {{}}{cast}"
    sql = f"""
        WITH nearest AS MATERIALIZED (
            SELECT {", ".join(f"e.{key}" for key in KEYS[table])}, {distance} AS distance FROM {table} e
            WHERE {" AND ".join(where)} ORDER BY distance LIMIT {{}}
        )
        SELECT {keys}, 1 - distance AS similarity FROM nearest ORDER BY distance, {KEYS[table][0]}
    """
    async with Chunk._meta.db.transaction():
        if path != "exact":
            await Chunk.raw(
                "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),"
                f" set_config('hnsw.ef_search', '{int(route.ef_search)}', true),"
                f" set_config('hnsw.max_scan_tuples', '{int(MAX_SCAN_TUPLES)}', true)"
            )
        rows: list[dict[str, Any]] = await Chunk.raw(sql, np.asarray(query, np.float32), *args, limit)
        return rows
