"""Rows written straight to the database, for tests that need a file without its bytes or its jobs."""

from __future__ import annotations

import uuid
from typing import Any

from store.tables import File


async def insert_file(
    tenant_id: uuid.UUID,
    filename: str,
    *,
    media_type: str = "document",
    content_type: str = "text/plain",
    auto_describe: bool = False,
    **columns: Any,
) -> uuid.UUID:
    """A file row as an upload leaves it (a document unless told), without bytes or jobs."""
    file_id = uuid.uuid4()
    await File.insert(
        File(
            id=file_id,
            tenant=tenant_id,
            media_type=media_type,
            filename=filename,
            size_bytes=1,
            content_type=content_type,
            sha256=uuid.uuid4().hex * 2,
            object_key=f"files/{tenant_id}/{file_id}/original",
            upload_method="direct",
            storage_target="default",
            content_category="general",
            auto_describe=auto_describe,
            **columns,
        )
    )
    return file_id
