"""A streaming reader for multipart/form-data request bodies: parts arrive as events, file bytes
are passed on chunk by chunk and never collected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import multipart

from api.schemas.text import is_text
from store.errors import InvalidInput, MalformedRequest

# Text fields are small (the largest, a description, is 10,000 characters).
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 64


@dataclass(frozen=True)
class PartStart:
    name: str
    filename: str | None
    content_type: str | None


@dataclass(frozen=True)
class PartEnd:
    name: str


FormEvent = PartStart | bytes | PartEnd


def boundary_of(content_type: str | None) -> str:
    """The multipart boundary from a Content-Type header, or a clear 400."""
    if not content_type:
        raise MalformedRequest("expected a multipart/form-data body")
    mime, options = multipart.parse_options_header(content_type)
    boundary = options.get("boundary")
    if mime != "multipart/form-data" or not boundary:
        raise MalformedRequest("expected a multipart/form-data body with a boundary")
    return boundary


@dataclass(frozen=True)
class MultipartBody:
    """A multipart/form-data request's body as it arrives, with its declared length and its boundary."""

    stream: AsyncIterator[bytes]
    content_length: int | None
    boundary: str


async def form_events(
    stream: AsyncIterator[bytes], boundary: str, max_parts: int = MAX_PARTS
) -> AsyncIterator[FormEvent]:
    """Parse the body as it arrives: PartStart, the part's bytes in chunks, PartEnd, for each part."""
    parser = multipart.PushMultipartParser(boundary, max_segment_count=max_parts)
    current: str | None = None
    try:
        async for chunk in stream:
            if not chunk:
                continue
            for event in parser.parse(chunk):
                if isinstance(event, multipart.MultipartSegment):
                    current = event.name
                    yield PartStart(event.name, event.filename, event.content_type)
                elif event is None:
                    yield PartEnd(current or "")
                    current = None
                else:
                    yield event
        for event in parser.parse(b""):
            if event is None:
                yield PartEnd(current or "")
        if not parser.closed:
            raise MalformedRequest("the multipart body ended early")
    except multipart.ParserLimitReached as exc:
        raise InvalidInput(f"too many form parts (at most {max_parts})") from exc
    except multipart.ParserError as exc:
        raise MalformedRequest(f"invalid multipart body: {exc}") from exc


class FieldCollector:
    """Gathers a text field's bytes, refusing oversized ones, and its text, refusing NUL and control characters."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._data = bytearray()

    def add(self, chunk: bytes) -> None:
        self._data += chunk
        if len(self._data) > MAX_FIELD_BYTES:
            raise InvalidInput(f"longer than {MAX_FIELD_BYTES} bytes", field=self.name)

    def text(self) -> str:
        try:
            text = self._data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput("is not valid UTF-8", field=self.name) from exc
        if not is_text(text):
            raise InvalidInput("must not contain NUL or control characters", field=self.name)
        return text
