"""Every S3 object key, built in one place from ids and fixed names: a filename never becomes a path, and one
file's objects share its prefix (`files/<tenant>/<file>/`), so deleting or listing a file's objects is one prefix."""

from __future__ import annotations

import uuid


def original_key(tenant_id: uuid.UUID, file_id: uuid.UUID) -> str:
    return f"files/{tenant_id}/{file_id}/original"


def file_prefix(object_key: str) -> str:
    """The prefix of every object of the file whose original is `object_key`."""
    return object_key.rsplit("/", 1)[0] + "/"


def variant_key(object_key: str, name: str, extension: str) -> str:
    """A variant lives beside its file's original (`object_key`), under the file's prefix."""
    return f"{file_prefix(object_key)}variants/{name}.{extension}"


def frame_key(object_key: str, index: int) -> str:
    """A video's key frame, by its position among the frames kept (0 is the first)."""
    return f"{file_prefix(object_key)}frames/{index}.jpg"


EXPORTS_PREFIX = "exports/"


def export_key(tenant_id: uuid.UUID, export_id: uuid.UUID, name: str) -> str:
    """`name` is made by the service (a date and a format), never given by the client."""
    return f"{EXPORTS_PREFIX}{tenant_id}/{export_id}/{name}"
