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
    row = _row(tenant_id, filename, media_type, content_type, auto_describe, **columns)
    await File.insert(row)
    return row.id


async def insert_paragraphs(file_id: uuid.UUID, tenant_id: uuid.UUID, texts: list[str]) -> None:
    """The document's chunks: one paragraph per text, as extraction would write them."""
    from store import documents

    chunks = [
        {
            "chunk_index": i,
            "content": text,
            "chunk_type": "paragraph",
            "heading_hierarchy": [],
            "page_numbers": [],
            "token_count": len(text.split()),
        }
        for i, text in enumerate(texts)
    ]
    await documents.replace(file_id, tenant_id, [], chunks)


async def insert_files(tenant_id: uuid.UUID, count: int) -> None:
    """`count` text documents (`0.txt`, `1.txt`...), 500 a statement (Postgres takes 32,767 parameters)."""
    for start in range(0, count, 500):
        rows = (
            _row(tenant_id, f"{n}.txt", "document", "text/plain", False) for n in range(start, min(count, start + 500))
        )
        await File.insert(*rows)


def _row(
    tenant_id: uuid.UUID, filename: str, media_type: str, content_type: str, auto_describe: bool, **columns: Any
) -> File:
    file_id = uuid.uuid4()
    return File(
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
