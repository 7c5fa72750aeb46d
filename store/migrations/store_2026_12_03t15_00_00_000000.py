"""Backfills and imports: a run of one step over a selection of files (or the registration of a bucket's objects),
its place in the selection (`cursor`, checkpointed with each batch it queues) and its counters. Each job it queues
names it, so its progress and its cancellation are questions about its jobs."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-12-03T15:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "backfills and imports, and the backfill of each job"

FORWARDS = """
CREATE TABLE backfill (
    id uuid PRIMARY KEY,
    kind varchar(16) NOT NULL,
    step varchar(40) NOT NULL,
    selection jsonb NOT NULL DEFAULT '{}',
    status varchar(16) NOT NULL,
    cursor jsonb,
    counts jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    enqueued_at timestamptz,
    finished_at timestamptz,
    CONSTRAINT backfill_kind CHECK (kind IN ('backfill', 'import', 'swap')),
    CONSTRAINT backfill_status CHECK (status IN ('running', 'completed', 'cancelled'))
);
CREATE INDEX backfill_created ON backfill (created_at DESC);
ALTER TABLE job ADD COLUMN backfill_id uuid REFERENCES backfill (id) ON DELETE SET NULL;
"""

BACKWARDS = "ALTER TABLE job DROP COLUMN backfill_id; DROP TABLE backfill;"


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
