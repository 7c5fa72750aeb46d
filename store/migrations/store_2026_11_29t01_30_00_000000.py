"""Upload sessions: a batch upload's record, with one row per file of the request in its order, whether it was
accepted (a new file), skipped (a duplicate: the tenant's existing copy) or rejected (with the reason)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-11-29T01:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "upload sessions and their files"

FORWARDS = """
CREATE TABLE upload_session (
    id uuid PRIMARY KEY,
    tenant uuid NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
    upload_method varchar(16) NOT NULL,
    created_at timestamptz NOT NULL,
    cancelled_at timestamptz
);
CREATE INDEX upload_session_tenant_created ON upload_session (tenant, created_at DESC);

CREATE TABLE upload_session_file (
    session_id uuid NOT NULL REFERENCES upload_session (id) ON DELETE CASCADE,
    position integer NOT NULL,
    filename varchar(255) NOT NULL,
    outcome varchar(16) NOT NULL CHECK (outcome IN ('accepted', 'skipped', 'rejected')),
    file_id uuid REFERENCES file (id) ON DELETE SET NULL,
    error text,
    PRIMARY KEY (session_id, position)
);
CREATE INDEX upload_session_file_file ON upload_session_file (file_id) WHERE file_id IS NOT NULL;
"""

BACKWARDS = """
DROP TABLE upload_session_file;
DROP TABLE upload_session;
"""


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
