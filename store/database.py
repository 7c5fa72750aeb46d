"""The Piccolo engine for Postgres, with pgvector's codec on every connection, and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from pgvector.asyncpg import register_vector
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction

from store.settings import Settings, get_settings

log = logging.getLogger(__name__)

# Any fixed number works; it serialises concurrent `migrate` runs (server, CLI, replicas).
_MIGRATION_LOCK_ID = 0x5C0F1C5


async def _init_connection(connection: asyncpg.Connection) -> None:
    """Teach asyncpg the `vector` type; before the first migration the type does not exist yet."""
    with contextlib.suppress(ValueError):
        await register_vector(connection)


class DatabaseNotConfigured(RuntimeError):
    """Raised when no database address is known yet."""


def database_url(settings: Settings) -> str:
    """The database's address: DATABASE_URL, or the embedded Postgres's once the services have started it."""
    if not settings.database.url:
        raise DatabaseNotConfigured(
            "DATABASE_URL is not set: run through `scopix` (which starts the embedded Postgres) "
            "or set DATABASE_URL to a Postgres with pgvector"
        )
    return settings.database.url


class ScopixEngine(PostgresEngine):
    """PostgresEngine whose connections, pooled or not, know pgvector's `vector` type, and whose address is bound
    on first use: Piccolo's own engines connect when built, so importing piccolo_conf would need the database up."""

    def __init__(self) -> None:
        super().__init__(config={})

    async def check_version(self) -> None:
        """Piccolo asks at construction, before an address is known; any Postgres with pgvector does."""

    def bind(self, url: str) -> None:
        """Connect to `url` from now on (the services resolved it: DATABASE_URL or the embedded Postgres)."""
        self.config = {"dsn": url}

    def _bound(self) -> None:
        if not self.config:
            self.bind(database_url(get_settings()))

    async def get_new_connection(self) -> asyncpg.Connection:
        self._bound()
        connection = await super().get_new_connection()
        await _init_connection(connection)
        return connection

    async def start_connection_pool(self, **kwargs: Any) -> None:
        self._bound()
        await super().start_connection_pool(init=_init_connection, **kwargs)


# The process's engine; piccolo_conf names it for Piccolo's tables.
DB = ScopixEngine()


def engine() -> ScopixEngine:
    """The process's engine, the one Piccolo's tables use."""
    return DB


def transaction() -> PostgresTransaction:
    """One transaction around several store calls, which join it (a batch upload records its files, their jobs
    and their session together)."""
    return engine().transaction()


async def run_migrations() -> None:
    """Apply every pending migration, one process at a time."""
    from piccolo.apps.migrations.commands.forwards import run_forwards

    connection = await engine().get_new_connection()
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
        result = await run_forwards(app_name="all")
        if not result.success:
            raise RuntimeError(f"migrations failed: {result.message}")
    finally:
        with contextlib.suppress(Exception):
            await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)
        await connection.close()


async def ping(timeout: float = 2.0) -> bool:
    """True when the database answers a trivial query within the timeout."""
    from store.tables import Tenant

    try:
        async with asyncio.timeout(timeout):
            await Tenant.raw("SELECT 1")
        return True
    except Exception as exc:  # health must report, not raise
        log.warning("database ping failed: %s", exc)
        return False


@contextlib.asynccontextmanager
async def pooled(max_size: int, min_size: int = 10) -> AsyncIterator[None]:
    """The process's connection pool during the block: started here, and closed after, unless it exists already
    (another app of the same process started it, as when tests serve a second app beside the session's); then it
    stays its starter's to close, so nobody pulls the pool from under the others' queries."""
    db = engine()
    if db.pool is not None:
        yield
        return
    await db.start_connection_pool(min_size=min(min_size, max_size), max_size=max_size)
    try:
        yield
    finally:
        await close_pool(db)


async def close_pool(db: PostgresEngine, timeout: float = 10.0) -> None:
    """Close the pool, waiting at most `timeout` for connections still in use (a request stuck on a
    dead backend must not hang shutdown); then the remaining connections are terminated."""
    pool = db.pool
    if pool is None:
        return
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        log.warning("database connections still busy after %.0f s; terminating them", timeout)
        pool.terminate()
    db.pool = None
