"""Images as knowledge: OCR status, per-model image embeddings, and the provenance of every AI output.

`image_embedding` holds one vector per (image, model), in the same per-model spaces as chunk embeddings: an
`embedding_space` row now names the table its vectors live in, and each space has a partial HNSW index on
its table (store/embeddings.ensure_space). `ai_models` records, per task, the model id and revision that
produced the file's current output (`{"ocr": {"model_id", "revision"}, ...}`).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-11-28T18:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "image embeddings, OCR status and AI provenance"

FORWARDS = """
ALTER TABLE file ADD COLUMN ocr_status varchar(16);
ALTER TABLE file ADD COLUMN ai_models jsonb;

CREATE TABLE image_embedding (
    file_id uuid NOT NULL REFERENCES file(id) ON DELETE CASCADE,
    model_id varchar(300) NOT NULL,
    tenant uuid NOT NULL,
    embedding vector NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (file_id, model_id)
);
-- Exact search of a small tenant, and the count that chooses between exact and HNSW.
CREATE INDEX image_embedding_tenant ON image_embedding (model_id, tenant);

ALTER TABLE embedding_space ADD COLUMN table_name varchar(63) NOT NULL DEFAULT 'chunk_embedding';
ALTER TABLE embedding_space DROP CONSTRAINT embedding_space_pkey;
ALTER TABLE embedding_space ADD PRIMARY KEY (table_name, model_id);
"""

BACKWARDS = """
DELETE FROM embedding_space WHERE table_name <> 'chunk_embedding';
ALTER TABLE embedding_space DROP CONSTRAINT embedding_space_pkey;
ALTER TABLE embedding_space ADD PRIMARY KEY (model_id);
ALTER TABLE embedding_space DROP COLUMN table_name;
DROP TABLE image_embedding;
ALTER TABLE file DROP COLUMN ai_models;
ALTER TABLE file DROP COLUMN ocr_status;
"""


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
