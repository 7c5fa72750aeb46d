"""Per-tenant HNSW indexes: a tenant too large for an exact scan gets its own partial HNSW index in a space
(`WHERE model_id = ... AND tenant = ...`), built concurrently by the engines' upkeep; a row here says it is
ready, so searches use it (store/tenant_indexes.py). Rows go with their space."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import sql_migration

ID = "2026-11-28T20:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "per-tenant HNSW indexes of large tenants"

FORWARDS = """
CREATE TABLE tenant_index (
    table_name varchar(63) NOT NULL,
    model_id varchar(300) NOT NULL,
    tenant uuid NOT NULL,
    index_name varchar(63) NOT NULL UNIQUE,
    rows_at_build integer NOT NULL,
    built_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, model_id, tenant),
    FOREIGN KEY (table_name, model_id) REFERENCES embedding_space (table_name, model_id) ON DELETE CASCADE
);
"""

BACKWARDS = """
DO $$
DECLARE name text;
BEGIN
    FOR name IN SELECT index_name FROM tenant_index LOOP
        EXECUTE format('DROP INDEX IF EXISTS %I', name);
    END LOOP;
END $$;
DROP TABLE tenant_index;
"""


async def forwards() -> MigrationManager:
    return sql_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
