"""A job keeps the trace context it was queued in (the W3C `traceparent`), so the span of its run continues
the trace of the request or the job that queued it (cluster/tracing.py)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-11-29T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "the trace context of each job"

FORWARDS = "ALTER TABLE job ADD COLUMN traceparent varchar(55);"

BACKWARDS = "ALTER TABLE job DROP COLUMN traceparent;"


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
