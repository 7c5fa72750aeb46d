"""What the engines' upkeep needs to leave nothing behind after a crash (pipelines/upload_reaper.py): when a
`complete` took an intent (`claimed_at`), so that one stuck VERIFYING is found, and lookups by file id and by S3
multipart upload id, so that S3 state without a row is told from S3 state an intent still owns."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-12-03T10:05:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "upload intents: claimed_at, lookups for the leftover sweep"

FORWARDS = """
ALTER TABLE upload_intent ADD COLUMN claimed_at timestamptz;
CREATE INDEX upload_intent_verifying ON upload_intent (claimed_at) WHERE status = 'VERIFYING';
CREATE INDEX upload_intent_file ON upload_intent (file_id);
CREATE INDEX upload_intent_live_multipart ON upload_intent (s3_upload_id)
    WHERE status IN ('PENDING', 'UPLOADED', 'VERIFYING');
"""

BACKWARDS = """
DROP INDEX upload_intent_live_multipart;
DROP INDEX upload_intent_file;
DROP INDEX upload_intent_verifying;
ALTER TABLE upload_intent DROP COLUMN claimed_at;
"""


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
