"""Queries over the `file` table, always scoped to one tenant."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from piccolo.columns import Column
from piccolo.columns.combination import WhereRaw
from piccolo.query.methods.select import Select, SelectRaw
from piccolo.querystring import QueryString

from store import jobs
from store.errors import Conflict, NotFound
from store.rows import ExpiredFile, FileListRow, FileRow, PatchedFile, R, as_row, as_rows, column_names
from store.status import UNFINISHED, any_component_in
from store.tables import File

SORT_COLUMNS = ("created_at", "content_created_at", "title", "size_bytes")
SEARCH_MODES = ("all", "metadata", "visible_text")
_TSV = {
    "all": "(metadata_tsv || content_tsv)",
    "metadata": "metadata_tsv",
    "visible_text": "content_tsv",
}
# Beyond this many matching files a listing's total is Postgres's estimate (`_total`). Counting is a walk over the
# matches, and a filter's matches are read from the heap: 1,000 of them take a few ms; 10,000 took 7 ms on the
# index alone and 27 ms with a tag filter (benchmarks/listing.py).
COUNT_EXACT_UP_TO = 1000
# What a listed file shows (FileListRow): its columns, and whether it has full descriptions without reading them.
LIST_COLUMNS = (
    *(File._meta.get_column_by_name(name) for name in column_names(FileListRow) if name != "has_full_description"),
    SelectRaw("coalesce(jsonb_array_length(full_descriptions) > 0, false) AS has_full_description"),
)
# Work that must not have its file pulled from under it.
_BUSY = ("processing",)


@dataclass(frozen=True)
class FileQuery:
    """The filters, order and page of a file listing."""

    search: str | None = None
    search_mode: str = "all"
    tags: Sequence[str] = ()
    media_types: Sequence[str] = ()
    folder_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    has_description: bool | None = None
    ids: Sequence[uuid.UUID] = ()
    compliance_status: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    sort_by: str | None = None
    sort_order: str = "desc"
    limit: int = 20
    offset: int = 0


def _live(tenant_id: uuid.UUID) -> Any:
    return (File.tenant == tenant_id) & File.deleted_at.is_null()


def _filters(tenant_id: uuid.UUID, q: FileQuery) -> list[Any]:
    conditions: list[Any] = [_live(tenant_id)]
    if q.search:
        conditions.append(WhereRaw(f"{_TSV[q.search_mode]} @@ websearch_to_tsquery('english', {{}})", q.search))
    if q.tags:
        conditions.append(WhereRaw("tags && {}::varchar[]", list(q.tags)))
    if q.media_types:
        conditions.append(File.media_type.is_in(list(q.media_types)))
    if q.folder_id is not None:
        conditions.append(File.folder_id == q.folder_id)
    if q.project_id is not None:
        conditions.append(File.project_id == q.project_id)
    if q.has_description is not None:
        described = "coalesce(user_description, upload_description) IS NOT NULL"
        conditions.append(WhereRaw(described if q.has_description else f"NOT ({described})"))
    if q.ids:
        conditions.append(File.id.is_in(list(q.ids)))
    if q.compliance_status is not None:
        conditions.append(File.compliance_status == q.compliance_status)
    if q.date_from is not None:
        conditions.append(File.created_at >= q.date_from)
    if q.date_to is not None:
        conditions.append(File.created_at <= q.date_to)
    return conditions


def _order(q: FileQuery) -> list[tuple[QueryString, bool]]:
    """Relevance first when searching without an explicit sort; missing values sort last (a NOT NULL column has
    none, and a nulls-last key would keep its index from serving the order); the id breaks ties so that pages are
    stable."""
    ascending = q.sort_order == "asc"
    if q.search and q.sort_by is None:
        rank = QueryString(f"ts_rank({_TSV[q.search_mode]}, websearch_to_tsquery('english', {{}}))", q.search)
        return [(rank, False), (QueryString("created_at"), False), (QueryString("id"), False)]
    column = q.sort_by or "created_at"
    keys = [(QueryString(column), ascending), (QueryString("id"), ascending)]
    if File._meta.get_column_by_name(column)._meta.null:
        keys.insert(0, (QueryString(f"({column} IS NULL)"), True))
    return keys


def _ordered(query: Select[File], q: FileQuery) -> Select[File]:
    for expression, ascending in _order(q):
        query = query.order_by(expression, ascending=ascending)
    return query


async def list_files(tenant_id: uuid.UUID, q: FileQuery) -> tuple[list[FileListRow], int]:
    """One page of the tenant's live files and the total number matching (see `_total`)."""
    rows = await page_query(tenant_id, q).output(load_json=True)
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return as_rows(FileListRow, rows), await _total(tenant_id, q, len(rows), more)


def page_query(tenant_id: uuid.UUID, q: FileQuery) -> Select[File]:
    """The page, and one row more to tell whether another follows. The page is chosen on ids alone, in a subquery
    that the indexes serve (the default order walks `file_tenant_newest`, index-only for a deep offset, and each
    other order an index of its own; search and tags may start from their GIN indexes); only its rows are then read
    whole, and put in order."""
    ids = _ordered(matching(tenant_id, q), q).limit(q.limit + 1).offset(q.offset)
    return _ordered(File.select(*LIST_COLUMNS).where(WhereRaw('"file"."id" IN ({})', ids.querystrings[0])), q)


def matching(tenant_id: uuid.UUID, q: FileQuery) -> Select[File]:
    """The ids of the files that `q` matches, in no order."""
    return File.select(File.id).where(*_filters(tenant_id, q))


def count_query(tenant_id: uuid.UUID, q: FileQuery, cap: int) -> QueryString:
    """The number of matching files, counting at most `cap` of them."""
    return QueryString("SELECT count(*) AS n FROM ({}) AS capped", matching(tenant_id, q).limit(cap).querystrings[0])


def count_cap(offset: int, shown: int, more: bool) -> int | None:
    """How many matching files a page's total counts (one past the exact range, to tell it is exceeded), or None
    where it needs no count: a last page's total is offset + shown; past the exact range it is an estimate."""
    if not more and (shown or not offset):
        return None
    if shown and offset + shown + 1 > COUNT_EXACT_UP_TO:
        return None
    # An empty page past the end: the total is below the offset, so counting up to it finds the exact total.
    return max(COUNT_EXACT_UP_TO, offset if not shown else 0) + 1


async def _total(tenant_id: uuid.UUID, q: FileQuery, shown: int, more: bool) -> int:
    """How many files match: exact up to COUNT_EXACT_UP_TO, Postgres's estimate beyond.

    A REST client pages with `has_more` (offset + shown < total) and shows the total as "N files": the first must
    be exact, the second need not be once it is large. So a last page gives the total for free (offset + shown);
    otherwise the matching files are counted, never more of them than the exact range (or than the client's own
    offset); past the range the total is the planner's estimate, never below what the page proves exists
    (offset + shown + 1) nor the range, so that has_more stays exact."""
    cap = count_cap(q.offset, shown, more)
    if cap is None and not more:
        return q.offset + shown
    if cap is not None:
        counted: int = (await File.raw("{}", count_query(tenant_id, q, cap)))[0]["n"]
        if counted < cap:
            return counted
    proven = q.offset + shown + 1 if shown else 0
    return max(proven, COUNT_EXACT_UP_TO + 1, await _estimate(tenant_id, q))


async def _estimate(tenant_id: uuid.UUID, q: FileQuery) -> int:
    """The planner's estimate of the matching files (from the table's statistics; no row is read)."""
    rows = await File.raw("EXPLAIN (FORMAT JSON) {}", matching(tenant_id, q).querystrings[0])
    plan = rows[0]["QUERY PLAN"]
    return int((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"])


def _columns(names: Sequence[str]) -> list[Any]:
    return [File._meta.get_column_by_name(name) for name in names]


async def resolve_id(tenant_id: uuid.UUID, ref: str, *, deleted: bool = False) -> uuid.UUID:
    """A file id from a full UUID or an 8-character prefix; other tenants' files do not exist here."""
    alive = File.deleted_at.is_not_null() if deleted else File.deleted_at.is_null()
    scope = (File.tenant == tenant_id) & alive
    ref = ref.strip().lower()
    try:
        file_id = uuid.UUID(ref)
    except ValueError:
        file_id = None
    if file_id is not None:
        if await File.exists().where(scope & (File.id == file_id)):
            return file_id
        raise NotFound(f"file {ref} not found")
    if len(ref) != 8 or any(c not in "0123456789abcdef" for c in ref):
        raise NotFound(f"file {ref} not found")
    low, high = uuid.UUID(ref + "0" * 24), uuid.UUID(ref + "f" * 24)
    rows = await File.select(File.id).where(scope & (File.id >= low) & (File.id <= high)).limit(2)
    if not rows:
        raise NotFound(f"file {ref} not found")
    if len(rows) > 1:
        raise Conflict(f"prefix {ref} matches more than one file; use the full id", code="ambiguous_prefix")
    found: uuid.UUID = rows[0]["id"]
    return found


async def get_file(tenant_id: uuid.UUID, ref: str) -> FileRow:
    file_id = await resolve_id(tenant_id, ref)
    row = await File.select().where((File.id == file_id) & (File.tenant == tenant_id)).output(load_json=True).first()
    if row is None:  # deleted between the two reads
        raise NotFound(f"file {ref} not found")
    return as_row(FileRow, row)


async def filenames(tenant_id: uuid.UUID, file_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The names of those of `file_ids` that are the tenant's live files."""
    if not file_ids:
        return {}
    rows = await File.select(File.id, File.filename).where(_live(tenant_id) & File.id.is_in(list(file_ids)))
    return {row["id"]: row["filename"] for row in rows}


async def find_by_sha256(tenant_id: uuid.UUID, sha256: str) -> uuid.UUID | None:
    row = await File.select(File.id).where(_live(tenant_id) & (File.sha256 == sha256)).order_by(File.created_at).first()
    return row["id"] if row else None


async def existing_sha256(tenant_id: uuid.UUID, hashes: Sequence[str]) -> set[str]:
    """Which of `hashes` (lower-case hex) the tenant has a live file with: those an upload with skip_duplicates
    would skip."""
    rows = await File.select(File.sha256).where(_live(tenant_id) & File.sha256.is_in(list(hashes))).distinct()
    return {row["sha256"] for row in rows}


async def live_rows(
    tenant_id: uuid.UUID,
    kind: type[R],
    *,
    file_ids: Sequence[uuid.UUID] | None = None,
    folder_id: uuid.UUID | None = None,
    limit: int,
) -> list[R]:
    """The tenant's live files (those of `file_ids`, in `folder_id`, when given), oldest first, as `kind` (a
    projection of the row: only its fields are read)."""
    query = File.select(*_columns(column_names(kind))).where(_live(tenant_id))
    if file_ids is not None:
        query = query.where(File.id.is_in(list(file_ids)))
    if folder_id is not None:
        query = query.where(File.folder_id == folder_id)
    return as_rows(kind, await query.order_by(File.created_at).limit(limit).output(load_json=True))


async def update_file(tenant_id: uuid.UUID, file_id: uuid.UUID, changes: Mapping[str, Any]) -> PatchedFile:
    """Apply changes (by column name) to a live file and return what they changed."""
    rows = (
        await File.update(_by_column(changes))
        .where(_live(tenant_id) & (File.id == file_id))
        .returning(*_columns(column_names(PatchedFile)))
    )
    if not rows:
        raise NotFound(f"file {file_id} not found")
    return as_row(PatchedFile, rows[0])


async def soft_delete(tenant_id: uuid.UUID, file_id: uuid.UUID, now: datetime) -> datetime:
    """Hide a live file; refused while a document's text is being extracted or embedded (an image's embedding
    is one row that may land on a hidden file)."""
    rows = (
        await File.update({File.deleted_at: now, File.updated_at: now})
        .where(
            _live(tenant_id)
            & (File.id == file_id)
            & (File.text_extraction_status.is_null() | File.text_extraction_status.not_in(list(_BUSY)))
            & (
                (File.media_type != "document")
                | File.embedding_status.is_null()
                | File.embedding_status.not_in(list(_BUSY))
            )
        )
        .returning(File.deleted_at)
    )
    if rows:
        deleted_at: datetime = rows[0]["deleted_at"]
        return deleted_at
    if await File.exists().where(_live(tenant_id) & (File.id == file_id)):
        raise Conflict("the file's text is being extracted or embedded; retry when it finishes", code="file_busy")
    raise NotFound(f"file {file_id} not found")


async def restore(tenant_id: uuid.UUID, file_id: uuid.UUID, not_before: datetime, now: datetime) -> None:
    """Undo a soft delete made after `not_before` (inside the retention window)."""
    rows = (
        await File.update({File.deleted_at: None, File.updated_at: now})
        .where(
            (File.tenant == tenant_id)
            & (File.id == file_id)
            & File.deleted_at.is_not_null()
            & (File.deleted_at > not_before)
        )
        .returning(File.id)
    )
    if rows:
        return
    if await File.exists().where(_live(tenant_id) & (File.id == file_id)):
        raise Conflict(f"file {file_id} is not deleted", code="not_deleted")
    raise NotFound(f"file {file_id} not found or past its restore window")


async def expired(deleted_before: datetime, limit: int) -> list[ExpiredFile]:
    """Soft-deleted files past retention, oldest first."""
    rows = (
        await File.select(*_columns(column_names(ExpiredFile)))
        .where(File.deleted_at.is_not_null() & (File.deleted_at < deleted_before))
        .order_by(File.deleted_at)
        .limit(limit)
    )
    return as_rows(ExpiredFile, rows)


async def delete_rows(file_ids: Sequence[uuid.UUID]) -> None:
    if file_ids:
        await File.delete().where(File.id.is_in(list(file_ids)) & File.deleted_at.is_not_null())


async def insert_unless_duplicate(
    values: dict[str, Any],
    *,
    skip_duplicates: bool,
    steps: Sequence[str] = (),
    lane: str = "interactive",
    backfill_id: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """Insert a new file row and queue its processing steps in one transaction (in `lane`, for the backfill or
    import `backfill_id` when given), or return the id of the tenant's live file with the same SHA-256 when
    duplicates are to be skipped. Serialised per (tenant, hash) so that concurrent uploads agree."""
    async with File._meta.db.transaction():
        await File.raw(
            "SELECT pg_advisory_xact_lock(hashtextextended({}, 0))", f"{values['tenant']}:{values['sha256']}"
        )
        if skip_duplicates:
            existing = await find_by_sha256(values["tenant"], values["sha256"])
            if existing is not None:
                return existing
        await File.insert(File(**values))
        for step in steps:
            await jobs.enqueue(values["id"], values["tenant"], step, lane=lane, backfill_id=backfill_id)
    return None


async def start_processing(file_id: uuid.UUID, components: Sequence[str], now: datetime) -> dict[str, Any]:
    """Mark components `processing` and return what a step needs to know of the file, in one
    round trip (deleted or not: a restore may follow)."""
    marked: dict[Column | str, Any] = {File._meta.get_column_by_name(c): "processing" for c in components}
    rows = (
        await File.update({**marked, File.processing_started_at: now})
        .where(File.id == file_id)
        .returning(File.id, File.tenant, File.object_key, File.media_type, File.content_type, File.document_type)
    )
    if not rows:
        raise NotFound(f"file {file_id} not found")
    row: dict[str, Any] = rows[0]
    row["tenant_id"] = row.pop("tenant")
    return row


async def set_columns(file_id: uuid.UUID, changes: Mapping[str, Any]) -> None:
    await File.update(_by_column(changes)).where(File.id == file_id)


def _by_column(changes: Mapping[str, Any]) -> dict[Column | str, Any]:
    """Changes keyed by column, as Piccolo's update takes them (an unknown name raises)."""
    return {File._meta.get_column_by_name(name): value for name, value in changes.items()}


_UNFINISHED = any_component_in(UNFINISHED)


async def idle_unfinished(tenant_id: uuid.UUID, idle_since: datetime, limit: int) -> list[FileRow]:
    """The tenant's live files with unfinished components and no progress (file or job update)
    since `idle_since`, longest idle first."""
    last_progress = "greatest(updated_at, (SELECT max(j.updated_at) FROM job j WHERE j.file_id = file.id))"
    rows = (
        await File.select()
        .where(_live(tenant_id), WhereRaw(_UNFINISHED), WhereRaw(f"{last_progress} < {{}}", idle_since))
        .order_by(QueryString(last_progress))
        .limit(limit)
        .output(load_json=True)
    )
    return as_rows(FileRow, rows)
