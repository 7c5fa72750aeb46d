"""Migrations as plain SQL: each migration module states its SQL and calls `sql_migration`, or
`concurrent_migration` for statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY)."""

from __future__ import annotations

from collections.abc import Sequence

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine


def sql_migration(migration_id: str, description: str, forwards: str, backwards: str) -> MigrationManager:
    """A manager that runs `forwards` (or `backwards` on rollback) as one SQL script."""
    return _manager(migration_id, description, [forwards], [backwards], in_transaction=True)


def concurrent_migration(
    migration_id: str, description: str, forwards: Sequence[str], backwards: Sequence[str]
) -> MigrationManager:
    """A manager that runs each statement alone, outside any transaction: what CREATE INDEX CONCURRENTLY needs so
    that a large table keeps taking writes while its index is built. Each statement must be safe to run again
    (DROP INDEX CONCURRENTLY IF EXISTS before the CREATE: a build that failed half-way leaves an invalid index),
    since a failure part-way leaves the earlier statements applied and the migration to be run again."""
    return _manager(migration_id, description, forwards, backwards, in_transaction=False)


def _manager(
    migration_id: str, description: str, forwards: Sequence[str], backwards: Sequence[str], *, in_transaction: bool
) -> MigrationManager:
    from store.database import engine

    manager = MigrationManager(
        migration_id=migration_id, app_name="store", description=description, wrap_in_transaction=in_transaction
    )

    async def run_forwards() -> None:
        for statement in forwards:
            await _execute_script(engine(), statement)

    async def run_backwards() -> None:
        for statement in backwards:
            await _execute_script(engine(), statement)

    manager.add_raw(run_forwards)
    manager.add_raw_backwards(run_backwards)
    return manager


async def _execute_script(db: PostgresEngine, script: str) -> None:
    """Run a multi-statement script inside the migration's transaction (simple query protocol), or alone on a
    connection of its own when there is none."""
    transaction = db.current_transaction.get()
    if transaction is not None:
        await transaction.connection.execute(script)
        return
    connection = await db.get_new_connection()
    try:
        await connection.execute(script)
    finally:
        await connection.close()
