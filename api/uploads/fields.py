"""The upload form's optional fields: parsing and validation, as the spec states them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from store.errors import InvalidInput

CONTENT_CATEGORIES = (
    "general", "blueprint", "ce_plan", "technical_diagram", "architectural_design", "product_photo",
    "real_estate", "mining", "robotics", "artwork", "screenshot", "document", "map", "pid", "pfd",
    "construction", "facility_assessment",
)  # fmt: skip
MAX_TAGS = 40
MAX_TAG_CHARS = 50
MAX_TITLE_CHARS = 255


@dataclass(frozen=True)
class UploadOptions:
    title: str | None = None
    tags: list[str] = field(default_factory=list)
    auto_describe: bool = True
    skip_duplicates: bool = False
    storage_target: str = "default"
    folder_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    content_category: str = "general"
    custom_schema_id: uuid.UUID | None = None
    compliance_type: str | None = None
    compliance_standard: str | None = None
    compliance_image_type: str = "main"


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise ValueError("must be a UUID") from None


def _one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        value = value.strip()
        if value not in choices:
            raise ValueError(f"must be one of: {', '.join(choices)}")
        return value

    return check


def _title(value: str) -> str | None:
    value = value.strip()
    if len(value) > MAX_TITLE_CHARS:
        raise ValueError(f"must be at most {MAX_TITLE_CHARS} characters")
    return value or None


def _bounded(limit: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        value = value.strip()
        if not value or len(value) > limit:
            raise ValueError(f"must be 1-{limit} characters")
        return value

    return check


def clean_tags(tags: list[str]) -> list[str]:
    """Trimmed, de-duplicated tags within the spec's limits (shared by upload and PATCH)."""
    cleaned: list[str] = []
    for tag in tags:
        tag = tag.strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG_CHARS:
            raise InvalidInput(f"each tag must be at most {MAX_TAG_CHARS} characters", field="tags")
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags", field="tags")
    return cleaned


FIELD_PARSERS: dict[str, Callable[[str], Any]] = {
    "title": _title,
    "tags": lambda value: clean_tags(value.split(",")),
    "auto_describe": _boolean,
    "skip_duplicates": _boolean,
    "storage_target": _one_of("default", "custom"),
    "folder_id": _uuid,
    "project_id": _uuid,
    "content_category": _one_of(*CONTENT_CATEGORIES),
    "custom_schema_id": _uuid,
    "compliance_type": _one_of("mls", "marketplace"),
    "compliance_standard": _bounded(100),
    "compliance_image_type": _one_of("main", "secondary"),
}


def parse_field(name: str, value: str) -> tuple[str, Any] | None:
    """Validate one form field as soon as it arrives; unknown fields are ignored (None)."""
    parser = FIELD_PARSERS.get(name)
    if parser is None:
        return None
    if name in ("folder_id", "project_id", "custom_schema_id") and not value.strip():
        return name, None
    return name, checked(name, value, parser)


def checked(name: str, value: str, parser: Callable[[str], Any]) -> Any:
    """A field's value through its parser; the parser's ValueError becomes the field's 422."""
    try:
        return parser(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=name) from None


def build_options(values: dict[str, Any]) -> UploadOptions:
    """Cross-field rules, applied once every field is in."""
    if values.get("compliance_type") and not values.get("compliance_standard"):
        raise InvalidInput("required when compliance_type is set", field="compliance_standard")
    return UploadOptions(**values)


def safe_filename(raw: str | None) -> str:
    """The client's filename reduced to a display name: no directories, no control characters.
    It is only ever stored and shown, never used as a path or an object key."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip().strip(".")
    return name[:MAX_TITLE_CHARS] or "upload"
