"""Videos: their key frames (store/video_frames.py), one row per frame kept, with its time, its JPEG in S3 and what
the models read of it; and the probe's facts beyond the spec's columns (`video_details`: container, real frame
rate, rotation, bit rate, pixel format, audio codec)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-12-03T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "video key frames and probe details"

FORWARDS = """
ALTER TABLE file ADD COLUMN video_details jsonb;
CREATE TABLE video_frame (
    file_id uuid NOT NULL REFERENCES file (id) ON DELETE CASCADE,
    frame_index integer NOT NULL,
    tenant uuid NOT NULL,
    timestamp_seconds double precision NOT NULL,
    scene_cut boolean NOT NULL,
    object_key varchar(300) NOT NULL,
    width integer NOT NULL,
    height integer NOT NULL,
    visible_text text,
    description text,
    PRIMARY KEY (file_id, frame_index)
);
"""

BACKWARDS = "DROP TABLE video_frame; ALTER TABLE file DROP COLUMN video_details;"


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
