"""Indexes for the listing's other orders (sort_by title, content_created_at, size_bytes), each matching its
ORDER BY exactly, so that sorting a large tenant by any of them walks an index rather than sorting every file.

size_bytes is NOT NULL: one index serves both directions. title and content_created_at may be null, and the
listing puts missing values last in either direction (`(col IS NULL), col, id`): an index walked backwards would
put them first, so each direction has its own. Built CONCURRENTLY, as store_2026_12_02t19_00_00_000000's.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from store.migration_sql import concurrent_migration

ID = "2026-12-02T19:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "listing indexes for the other sort orders"

# name -> the index's columns after the tenant
_INDEXES = {
    "file_tenant_size": "size_bytes DESC, id DESC",
    "file_tenant_title_asc": "(title IS NULL), title, id",
    "file_tenant_title_desc": "(title IS NULL), title DESC, id DESC",
    "file_tenant_content_created_asc": "(content_created_at IS NULL), content_created_at, id",
    "file_tenant_content_created_desc": "(content_created_at IS NULL), content_created_at DESC, id DESC",
}

FORWARDS = tuple(
    statement
    for name, columns in _INDEXES.items()
    for statement in (
        f"DROP INDEX CONCURRENTLY IF EXISTS {name}",
        f"CREATE INDEX CONCURRENTLY {name} ON file (tenant, {columns}) WHERE deleted_at IS NULL",
    )
)

BACKWARDS = tuple(f"DROP INDEX CONCURRENTLY IF EXISTS {name}" for name in _INDEXES)


async def forwards() -> MigrationManager:
    return concurrent_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
