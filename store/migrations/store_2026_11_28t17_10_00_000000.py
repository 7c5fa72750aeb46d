"""Where each image variant is stored, and with what size and type."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-11-28T17:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "file variants"

FORWARDS = "ALTER TABLE file ADD COLUMN variants jsonb;"
BACKWARDS = "ALTER TABLE file DROP COLUMN variants;"


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
