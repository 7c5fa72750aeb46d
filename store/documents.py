"""What a document became: its digitized pages and its retrieval chunks (their vectors: store/embeddings.py).

A document's pages and chunks are replaced together when its text is extracted again, in the transaction
that completes the extraction job, so a reader never sees the pages of one extraction with the chunks of
another.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from store.rows import ChunkRow, PageRow, as_row, as_rows
from store.tables import Chunk

_INSERT_PAGES = """
INSERT INTO document_page (file_id, page_number, status, elements, error_message)
SELECT {}, p.page_number, p.status, p.elements::jsonb, p.error_message
FROM unnest({}::int[], {}::text[], {}::text[], {}::text[]) AS p(page_number, status, elements, error_message)
"""

_INSERT_CHUNKS = """
INSERT INTO chunk (id, file_id, tenant, chunk_index, content, chunk_type, heading_hierarchy, page_numbers,
                   token_count, embedding_status)
SELECT c.id, {}, {}, c.chunk_index, c.content, c.chunk_type,
       ARRAY(SELECT json_array_elements_text(c.headings::json)),
       ARRAY(SELECT json_array_elements_text(c.pages::json)::int),
       c.token_count, 'pending'
FROM unnest({}::uuid[], {}::int[], {}::text[], {}::text[], {}::text[], {}::text[], {}::int[])
    AS c(id, chunk_index, content, chunk_type, headings, pages, token_count)
"""

_PAGE_COLUMNS = "page_number, status, elements, error_message"


async def replace(
    file_id: uuid.UUID, tenant_id: uuid.UUID, pages: Sequence[Mapping[str, Any]], chunks: Sequence[Mapping[str, Any]]
) -> None:
    """Store a document's pages (`page_number`, `status`, `elements`, `error_message`) and chunks
    (`chunk_index`, `content`, `chunk_type`, `heading_hierarchy`, `page_numbers`, `token_count`) in place of
    earlier ones; joins the caller's transaction. Three statements whatever the sizes."""
    async with Chunk._meta.db.transaction():
        await Chunk.raw("DELETE FROM document_page WHERE file_id = {}", file_id)
        await Chunk.raw("DELETE FROM chunk WHERE file_id = {}", file_id)
        if pages:
            await Chunk.raw(
                _INSERT_PAGES,
                file_id,
                [page["page_number"] for page in pages],
                [page["status"] for page in pages],
                [json.dumps(page["elements"]) for page in pages],
                [page.get("error_message") for page in pages],
            )
        if chunks:
            await Chunk.raw(
                _INSERT_CHUNKS,
                file_id,
                tenant_id,
                [uuid.uuid4() for _ in chunks],
                [c["chunk_index"] for c in chunks],
                [c["content"] for c in chunks],
                [c["chunk_type"] for c in chunks],
                [json.dumps(c["heading_hierarchy"]) for c in chunks],
                [json.dumps(c["page_numbers"]) for c in chunks],
                [c["token_count"] for c in chunks],
            )


# The reason is the file's error (set in the same transaction), after `{}`.
_FAIL_PAGES = """
UPDATE document_page SET status = 'failed',
    error_message = {} || coalesce((SELECT error_message FROM file WHERE id = {}), 'unknown error')
WHERE file_id = {} AND status = {}
"""


async def fail_pages(file_id: uuid.UUID, status: str, reason: str) -> None:
    """Mark the document's pages of `status` failed, their error the `reason` followed by the file's error."""
    await Chunk.raw(_FAIL_PAGES, reason, file_id, file_id, status)


async def has_chunks(file_id: uuid.UUID) -> bool:
    found: bool = await Chunk.exists().where(Chunk.file_id == file_id)
    return found


def _page(row: Mapping[str, Any]) -> PageRow:
    """The page, its elements decoded (raw SQL hands JSON over as text)."""
    elements = row["elements"]
    return as_row(PageRow, {**row, "elements": json.loads(elements) if isinstance(elements, str) else elements})


async def pages_of(file_id: uuid.UUID, offset: int = 0, limit: int | None = None) -> list[PageRow]:
    """The document's digitized pages in order: every one, or `limit` of them after the first `offset`."""
    rows = await Chunk.raw(
        f"SELECT {_PAGE_COLUMNS} FROM document_page WHERE file_id = {{}} ORDER BY page_number LIMIT {{}} OFFSET {{}}",
        file_id,
        limit,
        offset,
    )
    return [_page(row) for row in rows]


async def page_of(file_id: uuid.UUID, page_number: int) -> PageRow | None:
    rows = await Chunk.raw(
        f"SELECT {_PAGE_COLUMNS} FROM document_page WHERE file_id = {{}} AND page_number = {{}}", file_id, page_number
    )
    return _page(rows[0]) if rows else None


async def page_statuses(file_id: uuid.UUID) -> dict[int, str]:
    rows = await Chunk.raw(
        "SELECT page_number, status FROM document_page WHERE file_id = {} ORDER BY page_number", file_id
    )
    return {row["page_number"]: row["status"] for row in rows}


async def chunks_of(file_id: uuid.UUID, offset: int = 0, limit: int | None = None) -> list[ChunkRow]:
    """The document's chunks in order: every one, or `limit` of them after the first `offset`."""
    query = Chunk.select().where(Chunk.file_id == file_id).order_by(Chunk.chunk_index).offset(offset)
    return as_rows(ChunkRow, await (query if limit is None else query.limit(limit)))


async def chunk_counts(file_id: uuid.UUID) -> dict[str, int]:
    """The document's chunks counted per embedding status (the statuses it has)."""
    rows = await Chunk.raw(
        "SELECT embedding_status, count(*) AS n FROM chunk WHERE file_id = {} GROUP BY embedding_status", file_id
    )
    return {row["embedding_status"]: row["n"] for row in rows}


async def chunks_by_id(chunk_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ChunkRow]:
    rows = as_rows(ChunkRow, await Chunk.select().where(Chunk.id.is_in(list(chunk_ids)))) if chunk_ids else []
    return {row.id: row for row in rows}


async def set_embedding_status(file_id: uuid.UUID, status: str, only_pending: bool = True) -> None:
    """Mark the document's chunks (those still pending, or all) with an embedding status."""
    query = Chunk.update({Chunk.embedding_status: status}).where(Chunk.file_id == file_id)
    if only_pending:
        query = query.where(Chunk.embedding_status == "pending")
    await query
