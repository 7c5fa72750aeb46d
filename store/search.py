"""What a semantic search needs of the files its chunks belong to."""

from __future__ import annotations

import uuid

from store.tables import File


async def live_filenames(tenant_id: uuid.UUID, file_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The names of those of the tenant's files that are not deleted, by id."""
    if not file_ids:
        return {}
    rows = await File.select(File.id, File.filename).where(
        (File.tenant == tenant_id) & File.id.is_in(list(file_ids)) & File.deleted_at.is_null()
    )
    return {row["id"]: row["filename"] for row in rows}
