"""Videos' key frames in the image embedding space: one vector per (frame, model), in the same per-model spaces as
`image_embedding` (an `embedding_space` row per model names this table; store/embeddings.ensure_space), so that an
image finds a video by any of its frames (store/frame_embeddings.py). A frame's vectors go with its row: a
re-analysis replaces a video's frames, a purge its file."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-12-03T16:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "video frame embeddings"

FORWARDS = """
CREATE TABLE video_frame_embedding (
    file_id uuid NOT NULL,
    frame_index integer NOT NULL,
    model_id varchar(300) NOT NULL,
    tenant uuid NOT NULL,
    embedding vector NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (file_id, frame_index, model_id),
    FOREIGN KEY (file_id, frame_index) REFERENCES video_frame (file_id, frame_index) ON DELETE CASCADE
);
-- Exact search of a small tenant, and the count that chooses between exact and HNSW.
CREATE INDEX video_frame_embedding_tenant ON video_frame_embedding (model_id, tenant);
"""

BACKWARDS = """
DELETE FROM embedding_space WHERE table_name = 'video_frame_embedding';
DROP TABLE video_frame_embedding;
"""


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
