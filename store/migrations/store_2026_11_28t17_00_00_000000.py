"""The durable job queue: one row per (file, step), claimed by workers with a lease."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-11-28T17:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "job queue"

FORWARDS = """
CREATE TABLE job (
    id uuid PRIMARY KEY,
    file_id uuid NOT NULL REFERENCES file(id) ON DELETE CASCADE,
    tenant uuid NOT NULL,
    step varchar(40) NOT NULL,
    lane varchar(16) NOT NULL CHECK (lane IN ('interactive', 'backfill')),
    status varchar(16) NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL CHECK (max_attempts >= 1),
    available_at timestamptz NOT NULL DEFAULT now(),
    lease_expires_at timestamptz,
    worker_id varchar(200),
    -- Ray task ids of every attempt (the API's processing_ids).
    task_ids text[] NOT NULL DEFAULT '{}',
    error text,
    payload jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);

-- The claim: the oldest available queued jobs of one lane.
CREATE INDEX job_queued ON job (lane, available_at, created_at) WHERE status = 'queued';
-- Crashed workers: running jobs whose lease has expired.
CREATE INDEX job_running_lease ON job (lane, lease_expires_at) WHERE status = 'running';
CREATE INDEX job_file ON job (file_id);
-- A file never has two active jobs for one step; enqueue relies on it.
CREATE UNIQUE INDEX job_active_step ON job (file_id, step) WHERE status IN ('queued', 'running');
"""

BACKWARDS = """
DROP TABLE job;
"""


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
