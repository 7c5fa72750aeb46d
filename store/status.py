"""Component statuses per media type, and the one place where `primary_status` is derived."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

COMPONENT_STATUSES = ("pending", "queued", "processing", "completed", "failed", "skipped")

# Which component statuses describe a file of each media type (the spec's list).
COMPONENTS: dict[str, tuple[str, ...]] = {
    "image": ("variant_status", "description_status"),
    "document": ("text_extraction_status", "digitization_status", "description_status"),
    "video": ("video_analysis_status", "description_status"),
    "link": ("crawl_status", "description_status"),
}


def components_of(media_type: str, row: Mapping[str, object]) -> dict[str, str | None]:
    return {name: row.get(name) for name in COMPONENTS[media_type]}  # type: ignore[misc]


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


def primary_status_of(row: Mapping[str, object]) -> str:
    return primary_status(components_of(str(row["media_type"]), row).values())


def initial_statuses(media_type: str, auto_describe: bool) -> dict[str, str]:
    """Statuses of a new file: every component pending, description skipped when not wanted."""
    statuses = dict.fromkeys(COMPONENTS[media_type], "pending")
    if not auto_describe:
        statuses["description_status"] = "skipped"
    return statuses
