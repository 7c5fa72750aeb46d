"""Documents as knowledge: digitized pages, chunks, and chunk embeddings in several model spaces.

An embedding row carries its model id, so the spaces of several models live side by side in one `vector`
column without a fixed dimension; each space gets its own partial HNSW index on a cast to its dimension,
created when the space is first written (store/embeddings.py). Tenant and file are copied onto the
embedding row so a filtered search touches one table.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-11-28T18:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "document pages, chunks and embeddings"

FORWARDS = """
ALTER TABLE file ADD COLUMN language varchar(16);
ALTER TABLE file ADD COLUMN embedding_status varchar(16);

CREATE TABLE document_page (
    file_id uuid NOT NULL REFERENCES file(id) ON DELETE CASCADE,
    page_number integer NOT NULL CHECK (page_number >= 1),
    status varchar(16) NOT NULL,
    elements jsonb NOT NULL DEFAULT '[]',
    error_message text,
    PRIMARY KEY (file_id, page_number)
);

CREATE TABLE chunk (
    id uuid PRIMARY KEY,
    file_id uuid NOT NULL REFERENCES file(id) ON DELETE CASCADE,
    tenant uuid NOT NULL,
    chunk_index integer NOT NULL,
    content text NOT NULL,
    chunk_type varchar(16) NOT NULL,
    heading_hierarchy text[] NOT NULL DEFAULT '{}',
    page_numbers integer[] NOT NULL DEFAULT '{}',
    token_count integer NOT NULL,
    embedding_status varchar(16) NOT NULL DEFAULT 'pending',
    UNIQUE (file_id, chunk_index)
);

CREATE TABLE chunk_embedding (
    chunk_id uuid NOT NULL REFERENCES chunk(id) ON DELETE CASCADE,
    model_id varchar(300) NOT NULL,
    tenant uuid NOT NULL,
    file_id uuid NOT NULL,
    embedding vector NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chunk_id, model_id)
);
-- Exact search of a small tenant or of a few documents, and the count that chooses between exact and HNSW.
CREATE INDEX chunk_embedding_tenant ON chunk_embedding (model_id, tenant);
CREATE INDEX chunk_embedding_file ON chunk_embedding (file_id);

CREATE TABLE embedding_space (
    model_id varchar(300) PRIMARY KEY,
    dimension integer NOT NULL CHECK (dimension > 0),
    index_name varchar(63) NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""

BACKWARDS = """
DROP TABLE embedding_space;
DROP TABLE chunk_embedding;
DROP TABLE chunk;
DROP TABLE document_page;
ALTER TABLE file DROP COLUMN embedding_status;
ALTER TABLE file DROP COLUMN language;
"""


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
