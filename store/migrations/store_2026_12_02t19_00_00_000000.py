"""Indexes that serve the file listing without sorting or scanning a tenant's files.

- `file_tenant_newest` is the listing's default order, newest first with the id breaking ties (created_at is
  NOT NULL, so the order needs no nulls-last key): a page is the next entries of the index, walked forwards
  (desc) or backwards (asc), and a deep offset is an index-only walk. It replaces `file_tenant_created`, whose
  (created_at DESC, id ASC) matched neither direction of the listing's tie-break.
- `file_search_tsv` is search_mode=all's exact expression, `metadata_tsv || content_tsv` (the two columns' own
  indexes serve the other modes; a query over both words cannot be split into two ORs without changing what
  matches), on live files as the listing reads them.

Built CONCURRENTLY (store.migration_sql.concurrent_migration) so that an existing large table keeps taking
uploads while they are built.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import concurrent_migration

ID = "2026-12-02T19:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "listing indexes: newest first, and full-text search over both search columns"

FORWARDS = (
    "DROP INDEX CONCURRENTLY IF EXISTS file_tenant_newest",
    "CREATE INDEX CONCURRENTLY file_tenant_newest ON file (tenant, created_at DESC, id DESC) WHERE deleted_at IS NULL",
    "DROP INDEX CONCURRENTLY IF EXISTS file_tenant_created",
    "DROP INDEX CONCURRENTLY IF EXISTS file_search_tsv",
    "CREATE INDEX CONCURRENTLY file_search_tsv ON file USING gin ((metadata_tsv || content_tsv))"
    " WHERE deleted_at IS NULL",
)

BACKWARDS = (
    "DROP INDEX CONCURRENTLY IF EXISTS file_search_tsv",
    "DROP INDEX CONCURRENTLY IF EXISTS file_tenant_created",
    "CREATE INDEX CONCURRENTLY file_tenant_created ON file (tenant, created_at DESC, id) WHERE deleted_at IS NULL",
    "DROP INDEX CONCURRENTLY IF EXISTS file_tenant_newest",
)


async def forwards() -> MigrationManager:
    return concurrent_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
