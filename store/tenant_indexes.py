"""Per-tenant HNSW indexes: a tenant with more vectors in a space than an exact scan serves well
(embeddings.EXACT_MAX_ROWS) gets a partial HNSW index of its own, `WHERE model_id = '...' AND tenant = '...'`.

Why: on the space's index a tenant's search walks everybody's vectors and keeps its own, so a query far from
the tenant's topics walks long and still misses; on its own graph every candidate is the tenant's. Indexes are
built one at a time in the cluster by the engines' upkeep (`TenantIndexKeeper`) with CREATE INDEX CONCURRENTLY,
which blocks no writer but cannot run in a transaction (so on a connection of its own, outside the pool). A
`tenant_index` row, written once the index is valid, is what tells searches to use it (embeddings.route_of).
A space's tenant indexes go when it is pruned (`drop_space`, from store/model_state.prune); their rows go with
its `embedding_space` row.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import asyncpg
from piccolo.engine.postgres import PostgresEngine

from store import embeddings
from store.embeddings import KEYS, index_name, literal
from store.tables import Chunk

log = logging.getLogger(__name__)

# A build's memory: the graph of ~100k 384-dimension vectors fits, beyond that the build spills (slower).
BUILD_MEMORY = "256MB"
# The graph: m as the space's index (the planner then always prices the tenant's own index below the space's, which
# holds more tuples); twice pgvector's default ef_construction, which lifts recall@10 on queries far from the
# tenant's topics from ~0.83 to ~0.92 at ef_search 200 (benchmarks/search.py, 12k rows) for ~1.4x the build time.
GRAPH = "m = 16, ef_construction = 128"
BUILD_LOCK = "tenant-index-build"  # a session advisory lock: one build at a time in the cluster
_PAUSE_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Candidate:
    """A tenant that needs an index of its own in a space."""

    table: str
    model_id: str
    dimension: int
    tenant: uuid.UUID
    rows: int

    @property
    def index(self) -> str:
        return tenant_index_name(self.model_id, self.tenant, self.table)


def tenant_index_name(model_id: str, tenant: uuid.UUID, table: str = embeddings.CHUNKS) -> str:
    """The space's index name and a hash of the tenant (at most 60 characters: within Postgres's 63)."""
    return f"{index_name(model_id, table)}_{hashlib.sha256(str(tenant).encode()).hexdigest()[:16]}"


async def due(min_rows: int | None = None) -> list[Candidate]:
    """Tenants with more than `min_rows` vectors in a space (by default EXACT_MAX_ROWS: those not searched
    exactly) and no index of their own, largest first. One pass over each space's (model_id, tenant) index."""
    threshold = embeddings.EXACT_MAX_ROWS if min_rows is None else min_rows
    found: list[Candidate] = []
    for table in KEYS:
        rows = await Chunk.raw(
            f"""
            SELECT s.model_id, s.dimension, e.tenant, e.n FROM embedding_space s
            CROSS JOIN LATERAL (
                SELECT tenant, count(*) AS n FROM {table} WHERE model_id = s.model_id GROUP BY tenant
                HAVING count(*) > {{}}
            ) e
            WHERE s.table_name = {{}} AND NOT EXISTS (SELECT 1 FROM tenant_index t
                WHERE t.table_name = s.table_name AND t.model_id = s.model_id AND t.tenant = e.tenant)
            """,
            threshold,
            table,
        )
        found += [Candidate(table, row["model_id"], row["dimension"], row["tenant"], row["n"]) for row in rows]
    return sorted(found, key=lambda candidate: -candidate.rows)


async def _own_connection() -> asyncpg.Connection:
    """A connection outside the pool: a build holds its session (and its lock) for minutes."""
    return await cast(PostgresEngine, Chunk._meta.db).get_new_connection()


async def build(candidate: Candidate) -> bool:
    """Build the tenant's index without blocking writers and record it; False when another build holds the
    cluster's build lock (this one is left for later). An index left invalid by a build cut short is dropped
    and built again; a valid one that was never recorded is recorded."""
    table, name = candidate.table, candidate.index
    connection = await _own_connection()
    try:
        if not await _try_build_lock(connection):
            return False
        if await _recorded(connection, candidate):
            return True
        valid = await connection.fetchval(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace",
            name,
        )
        if not valid:
            started = time.perf_counter()
            await connection.execute(f"SET maintenance_work_mem = '{BUILD_MEMORY}'")
            await connection.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
            await connection.execute(
                f'CREATE INDEX CONCURRENTLY "{name}" ON {table} USING hnsw'
                f" ((embedding::vector({int(candidate.dimension)})) vector_cosine_ops) WITH ({GRAPH})"
                f" WHERE model_id = {literal(candidate.model_id)} AND tenant = {literal(str(candidate.tenant))}"
            )
            log.info(
                "built %s for tenant %s in %s of %s (%d rows) in %.1f s",
                name,
                candidate.tenant,
                table,
                candidate.model_id,
                candidate.rows,
                time.perf_counter() - started,
            )
        await _record(connection, candidate)
        return True
    finally:
        await connection.close()


async def _try_build_lock(connection: asyncpg.Connection) -> bool:
    """Take the cluster's build lock for the connection's session, if no other session holds it."""
    return bool(await connection.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", BUILD_LOCK))


async def _recorded(connection: asyncpg.Connection, candidate: Candidate) -> bool:
    return bool(
        await connection.fetchval(
            "SELECT 1 FROM tenant_index WHERE table_name = $1 AND model_id = $2 AND tenant = $3",
            candidate.table,
            candidate.model_id,
            candidate.tenant,
        )
    )


async def _record(connection: asyncpg.Connection, candidate: Candidate) -> None:
    """Record the index, under the space's lock (store.embeddings.ensure_space, model_state.prune's); should
    the space have been pruned meanwhile, drop the index instead."""
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"space:{candidate.table}:{candidate.model_id}"
        )
        recorded = await connection.fetchval(
            """
            INSERT INTO tenant_index (table_name, model_id, tenant, index_name, rows_at_build)
            SELECT table_name, model_id, $3, $4, $5 FROM embedding_space WHERE table_name = $1 AND model_id = $2
            ON CONFLICT DO NOTHING RETURNING 1
            """,
            candidate.table,
            candidate.model_id,
            candidate.tenant,
            candidate.index,
            candidate.rows,
        )
        if not recorded and not await _recorded(connection, candidate):
            await connection.execute(f'DROP INDEX IF EXISTS "{candidate.index}"')


async def drop_space(table: str, model_id: str) -> list[str]:
    """Drop the tenant indexes of a space being pruned: every index named after the space's, recorded or left
    behind by a build; their `tenant_index` rows go with the space's row. Joins the caller's transaction."""
    rows = await Chunk.raw(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = {}"
        " AND starts_with(indexname, {})",
        table,
        index_name(model_id, table) + "_",
    )
    for row in rows:
        await Chunk.raw(f'DROP INDEX IF EXISTS "{row["indexname"]}"')
    return [row["indexname"] for row in rows]


@contextlib.asynccontextmanager
async def builds_paused() -> AsyncIterator[None]:
    """Hold the cluster's build lock: wait for a running build to end, and start none until the block ends (a prune
    that dropped a space's indexes while a build ran would deadlock with it). The lock is tried and retried rather
    than waited for: a session waiting in Postgres holds a snapshot, which CREATE INDEX CONCURRENTLY waits out."""
    connection = await _own_connection()
    try:
        while not await _try_build_lock(connection):
            await asyncio.sleep(_PAUSE_POLL_SECONDS)
        yield
    finally:
        await connection.close()  # and with it the session's lock


class TenantIndexKeeper:
    """An engine's upkeep: builds the index of one tenant that needs one per call, the largest first. While none
    does (or a build failed, or another engine holds the build lock), it looks again only every
    `check_seconds`, since each look counts every space's rows per tenant."""

    def __init__(self, check_seconds: float = 60.0, min_rows: int | None = None) -> None:
        self._check_seconds = check_seconds
        self._min_rows = min_rows
        self._next_check = 0.0

    async def __call__(self) -> None:
        if time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + self._check_seconds
        candidates = await due(self._min_rows)
        if candidates and await build(candidates[0]):
            self._next_check = 0.0  # the next one, at once
