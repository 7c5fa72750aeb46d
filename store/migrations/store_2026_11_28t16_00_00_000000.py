"""Tenants, hashed API keys and files, with full-text search columns."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-11-28T16:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tenants, api keys, files"

FORWARDS = """
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE tenant (
    id uuid PRIMARY KEY,
    name varchar(100) NOT NULL UNIQUE,
    tier varchar(20) NOT NULL DEFAULT 'free',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_key (
    id uuid PRIMARY KEY,
    tenant uuid NOT NULL REFERENCES tenant(id) ON DELETE CASCADE,
    prefix varchar(16) NOT NULL UNIQUE,
    key_hash varchar(64) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    last_used_at timestamptz
);

-- Search columns are generated from immutable expressions; array_to_string is only stable.
CREATE FUNCTION scopix_words(parts varchar[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT array_to_string(parts, ' ') $$;

CREATE TABLE file (
    id uuid PRIMARY KEY,
    tenant uuid NOT NULL REFERENCES tenant(id) ON DELETE CASCADE,
    media_type varchar(16) NOT NULL,
    filename varchar(255) NOT NULL,
    title varchar(255),
    tags varchar(50)[] NOT NULL DEFAULT '{}',
    size_bytes bigint NOT NULL,
    content_type varchar(100) NOT NULL,
    format varchar(16),
    sha256 varchar(64) NOT NULL,
    object_key varchar(300) NOT NULL,
    upload_method varchar(16) NOT NULL,
    storage_target varchar(16) NOT NULL DEFAULT 'default',
    folder_id uuid,
    project_id uuid,
    content_category varchar(40) NOT NULL DEFAULT 'general',
    auto_describe boolean NOT NULL DEFAULT true,
    custom_schema_id uuid,
    compliance_type varchar(20),
    compliance_standard varchar(100),
    compliance_image_type varchar(20),
    compliance_status varchar(20),
    variant_status varchar(16),
    description_status varchar(16),
    text_extraction_status varchar(16),
    digitization_status varchar(16),
    video_analysis_status varchar(16),
    crawl_status varchar(16),
    error_message text,
    dimensions jsonb,
    variant_count integer,
    blur_hash varchar(100),
    content_created_at timestamptz,
    upload_description text,
    user_description text,
    visible_text text,
    text_regions jsonb,
    full_descriptions jsonb,
    description_error text,
    description_generated_at timestamptz,
    document_type varchar(8),
    page_count integer,
    chunk_count integer,
    extracted_text text,
    duration_seconds double precision,
    frame_rate double precision,
    video_codec varchar(32),
    resolution varchar(32),
    source_url text,
    domain varchar(255),
    og_metadata jsonb,
    favicon_url text,
    extracted_images jsonb,
    extracted_images_count integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    processing_started_at timestamptz,
    completed_at timestamptz,
    deleted_at timestamptz,
    -- search_mode=metadata: what people typed or were told about the file.
    metadata_tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(title, '')), 'A')
        || setweight(to_tsvector('english', regexp_replace(filename, '[._-]+', ' ', 'g')), 'A')
        || setweight(to_tsvector('english', scopix_words(tags)), 'B')
        || setweight(to_tsvector('english', coalesce(user_description, '')), 'B')
        || setweight(to_tsvector('english', coalesce(upload_description, '')), 'C')
    ) STORED,
    -- search_mode=visible_text: text seen in the content (OCR, document text; capped for tsvector).
    content_tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(visible_text, '')), 'B')
        || setweight(to_tsvector('english', left(coalesce(extracted_text, ''), 200000)), 'D')
    ) STORED
);

CREATE INDEX file_tenant_created ON file (tenant, created_at DESC, id) WHERE deleted_at IS NULL;
CREATE INDEX file_tenant_sha256 ON file (tenant, sha256) WHERE deleted_at IS NULL;
CREATE INDEX file_deleted_at ON file (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX file_tags ON file USING gin (tags);
CREATE INDEX file_metadata_tsv ON file USING gin (metadata_tsv);
CREATE INDEX file_content_tsv ON file USING gin (content_tsv);
"""

BACKWARDS = """
DROP TABLE file;
DROP FUNCTION scopix_words(varchar[]);
DROP TABLE api_key;
DROP TABLE tenant;
"""


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
