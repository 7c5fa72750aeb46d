"""Upload intents: a direct upload's record from its presigned URLs to its file (store/upload_intents.py). `parts`
maps a confirmed part's number to its ETag and size, as S3 listed them; `options` holds the upload's optional fields
until the file is recorded."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-12-03T00:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "upload intents of direct uploads"

FORWARDS = """
CREATE TABLE upload_intent (
    id uuid PRIMARY KEY,
    tenant uuid NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
    upload_mode varchar(16) NOT NULL,
    status varchar(16) NOT NULL,
    filename varchar(255) NOT NULL,
    content_type varchar(100) NOT NULL,
    media_type varchar(16) NOT NULL,
    size_bytes bigint NOT NULL,
    claimed_file_hash varchar(64) NOT NULL,
    part_size_bytes bigint,
    total_parts integer,
    s3_upload_id text,
    object_key varchar(300) NOT NULL,
    file_id uuid NOT NULL,
    deduplicated boolean NOT NULL DEFAULT false,
    options jsonb NOT NULL DEFAULT '{}',
    parts jsonb NOT NULL DEFAULT '{}',
    error_message text,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    confirmed_at timestamptz,
    completed_at timestamptz
);
CREATE INDEX upload_intent_tenant ON upload_intent (tenant, created_at DESC);
CREATE INDEX upload_intent_open_expiry ON upload_intent (expires_at) WHERE status IN ('PENDING', 'UPLOADED');
"""

BACKWARDS = "DROP TABLE upload_intent;"


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
