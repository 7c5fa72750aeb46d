"""Rows written straight to the database, for tests that need a file without its bytes or its jobs."""

from __future__ import annotations

import uuid
from typing import Any

from store.tables import File


async def document_row(tenant_id: uuid.UUID, filename: str, **columns: Any) -> uuid.UUID:
    """A document's file row as an upload leaves it, without bytes or jobs (no engine touches it)."""
    file_id = uuid.uuid4()
    await File.insert(
        File(
            id=file_id,
            tenant=tenant_id,
            media_type="document",
            filename=filename,
            size_bytes=1,
            content_type="text/plain",
            sha256=uuid.uuid4().hex * 2,
            object_key=f"files/{tenant_id}/{file_id}/original",
            upload_method="direct",
            storage_target="default",
            content_category="general",
            auto_describe=False,
            **columns,
        )
    )
    return file_id
