"""The jobs of each backfill by status (its progress, its cancellation), built without blocking the job queue."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import concurrent_migration

ID = "2026-12-03T15:05:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "index of the jobs of each backfill"

FORWARDS = [
    "DROP INDEX CONCURRENTLY IF EXISTS job_backfill",
    "CREATE INDEX CONCURRENTLY job_backfill ON job (backfill_id, status) WHERE backfill_id IS NOT NULL",
]
BACKWARDS = ["DROP INDEX CONCURRENTLY IF EXISTS job_backfill"]


async def forwards() -> MigrationManager:
    return concurrent_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
