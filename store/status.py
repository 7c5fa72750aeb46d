"""Component statuses per media type, and the one place where `primary_status` is derived."""

from __future__ import annotations

from collections.abc import Iterable

from store.rows import FileStatusRow

COMPONENT_STATUSES = ("pending", "queued", "processing", "completed", "failed", "skipped")

# Which component statuses describe a file of each media type (the spec's list).
COMPONENTS: dict[str, tuple[str, ...]] = {
    # ocr_status and embedding_status (of the image) are ours beyond the spec's list.
    "image": ("variant_status", "ocr_status", "embedding_status", "description_status"),
    # embedding_status (of the chunks) is ours beyond the spec's list: search is ready when it completes;
    # ocr_status (of scanned PDF pages) too: null once the text layer shows that no page needs it.
    "document": (
        "text_extraction_status",
        "digitization_status",
        "ocr_status",
        "embedding_status",
        "description_status",
    ),
    # variant_status, ocr_status and embedding_status (of the key frames) are ours beyond the spec's list; they end
    # with video_analysis_status (pipelines/video/analysis.py).
    "video": ("video_analysis_status", "variant_status", "ocr_status", "embedding_status", "description_status"),
    "link": ("crawl_status", "description_status"),
}


# Every component column, across media types (those of another media type are null in a file's row).
ALL_COMPONENTS = tuple(dict.fromkeys(name for names in COMPONENTS.values() for name in names))
UNFINISHED = ("pending", "queued", "processing")


def any_component_in(statuses: tuple[str, ...], table: str = "file") -> str:
    """SQL: some component of the `table` row has one of `statuses`; true or false, never null (the columns of
    other media types are null, and so is every column of a row missing from an outer join)."""
    values = ", ".join(f"'{status}'" for status in statuses)
    return "(" + " OR ".join(f"coalesce({table}.{name}, '') IN ({values})" for name in ALL_COMPONENTS) + ")"


def components_of(row: FileStatusRow) -> dict[str, str | None]:
    """The statuses of the components of the file's media type."""
    return {name: getattr(row, name) for name in COMPONENTS[row.media_type]}


def primary_status(statuses: Iterable[str | None]) -> str:
    """pending | processing | completed | failed | partially_completed, from component statuses.

    Skipped components do not count; work under way makes the file `processing`; once everything
    is terminal, all-completed is `completed`, all-failed `failed`, a mix `partially_completed`.
    """
    relevant = [s for s in statuses if s is not None and s != "skipped"]
    if not relevant:
        return "completed"
    if any(s in ("queued", "processing") for s in relevant):
        return "processing"
    if "pending" in relevant:
        started = any(s in ("completed", "failed") for s in relevant)
        return "processing" if started else "pending"
    if all(s == "completed" for s in relevant):
        return "completed"
    if all(s == "failed" for s in relevant):
        return "failed"
    return "partially_completed"


def primary_status_of(row: FileStatusRow) -> str:
    return primary_status(components_of(row).values())


TERMINAL = ("completed", "failed", "partially_completed")


def unified_status(primary: str) -> str:
    """The spec's unified upload + processing status of a stored file (uploads that are still
    arriving, `uploading`/`confirming`, have no file row yet)."""
    return "queued" if primary == "pending" else primary
