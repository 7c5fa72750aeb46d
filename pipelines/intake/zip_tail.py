"""ZIP end records for the content sniffer: a DOCX's central directory, and ZIP archives hidden at a file's end.

ZIP readers start from the End Of Central Directory record at the end of the file, so everything here
works on the sniffer's tail window (the last bytes of the stream) and never needs the whole upload.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

_EOCD = b"PK\x05\x06"
_EOCD_FIELDS = struct.Struct("<4xHHHHIIH")  # disk, directory disk, entries here, entries, size, offset, comment
_CENTRAL_HEADER = b"PK\x01\x02"
_CENTRAL_NAME_FIELDS = struct.Struct("<HHH")  # name, extra and comment lengths, at +28 in a central header
_LOCAL_OFFSET = struct.Struct("<I")  # the entry's local header offset, at +42 in a central header
_CENTRAL_HEADER_SIZE = 46
_MAX_COMMENT = 0xFFFF


def _end_records(window: bytes, start: int = 0) -> Iterator[tuple[int, tuple[int, ...]]]:
    """Every complete EOCD record in window[start:], last first, with its unpacked fields."""
    pos = window.rfind(_EOCD, start)
    while pos != -1:
        if pos + _EOCD_FIELDS.size <= len(window):
            yield pos, _EOCD_FIELDS.unpack_from(window, pos)
        pos = window.rfind(_EOCD, start, pos + len(_EOCD) - 1)


def contains_zip(window: bytes) -> bool:
    """True when the window holds a ZIP end record that a ZIP reader would act on.

    Either the record (with its comment) ends exactly at the end of the file, which is what unzip
    looks for, or it points back at a central directory header. Random data matches neither by
    chance in any realistic file size (a 4-byte signature plus a 16- or 32-bit consistency check).
    """
    for pos, (*_, size, _offset, comment) in _end_records(window):
        if pos + _EOCD_FIELDS.size + comment == len(window):
            return True
        if 0 < size <= pos and window.startswith(_CENTRAL_HEADER, pos - size):
            return True
    return False


class Directory(NamedTuple):
    """A ZIP's central directory: (local header offset, name) per entry, and where it starts."""

    entries: list[tuple[int, str]]
    offset: int


def central_directory(window: bytes, window_offset: int) -> Directory | None:
    """The central directory of the ZIP that makes up the whole file (window = its last bytes, starting at
    window_offset in the file), or None when it cannot be read from the window: no end record flush with
    the end of the file, multi-disk or ZIP64, inconsistent offsets, or a directory larger than the window."""
    search_from = max(len(window) - _EOCD_FIELDS.size - _MAX_COMMENT, 0)
    for pos, (disk, cd_disk, entries_here, entries, size, offset, comment) in _end_records(window, search_from):
        if pos + _EOCD_FIELDS.size + comment != len(window):
            continue
        start = pos - size
        if disk or cd_disk or entries_here != entries or start < 0 or window_offset + start != offset:
            return None
        found = _entries(window, start, pos, entries)
        return None if found is None else Directory(found, offset)
    return None


def _entries(window: bytes, start: int, end: int, count: int) -> list[tuple[int, str]] | None:
    """Walk `count` central directory headers that must exactly fill window[start:end]."""
    found = []
    for _ in range(count):
        if start + _CENTRAL_HEADER_SIZE > end or not window.startswith(_CENTRAL_HEADER, start):
            return None
        name_len, extra_len, comment_len = _CENTRAL_NAME_FIELDS.unpack_from(window, start + 28)
        (local_offset,) = _LOCAL_OFFSET.unpack_from(window, start + 42)
        name_start = start + _CENTRAL_HEADER_SIZE
        found.append((local_offset, window[name_start : name_start + name_len].decode("utf-8", "replace")))
        start = name_start + name_len + extra_len + comment_len
    return found if start == end else None
