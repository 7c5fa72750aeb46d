"""Migrations as plain SQL: each migration module states its SQL and calls `sql_migration`."""

from __future__ import annotations

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine


def sql_migration(migration_id: str, description: str, forwards: str, backwards: str) -> MigrationManager:
    """A manager that runs `forwards` (or `backwards` on rollback) as one SQL script."""
    from store.database import engine

    manager = MigrationManager(migration_id=migration_id, app_name="store", description=description)

    async def run_forwards() -> None:
        await _execute_script(engine(), forwards)

    async def run_backwards() -> None:
        await _execute_script(engine(), backwards)

    manager.add_raw(run_forwards)
    manager.add_raw_backwards(run_backwards)
    return manager


async def _execute_script(db: PostgresEngine, script: str) -> None:
    """Run a multi-statement script inside the migration's transaction (simple query protocol)."""
    transaction = db.current_transaction.get()
    if transaction is not None:
        await transaction.connection.execute(script)
        return
    connection = await db.get_new_connection()
    try:
        await connection.execute(script)
    finally:
        await connection.close()
