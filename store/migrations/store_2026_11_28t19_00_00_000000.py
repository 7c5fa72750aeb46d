"""Which model each task uses, and the swap in progress: the model being backfilled (the target) beside the active
one. No row for a task: its model is the one the settings name (store/model_state.py)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-11-28T19:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "active and target model per task"

FORWARDS = """
CREATE TABLE model_state (
    task varchar(32) PRIMARY KEY,
    active_model_id varchar(300) NOT NULL,
    active_revision varchar(100),
    target_model_id varchar(300),
    target_revision varchar(100),
    backfill_started_at timestamptz,
    activated_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (target_model_id IS DISTINCT FROM active_model_id),
    CHECK ((target_model_id IS NULL) = (backfill_started_at IS NULL))
);
"""

BACKWARDS = "DROP TABLE model_state;"


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
