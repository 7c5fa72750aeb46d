"""An API key may expire: `expires_at` (null: never). Authentication refuses a key past it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-12-02T23:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "the expiry of each API key"

FORWARDS = "ALTER TABLE api_key ADD COLUMN expires_at timestamptz;"

BACKWARDS = "ALTER TABLE api_key DROP COLUMN expires_at;"


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
