"""A DOCX's parts, inspected as they stream by.

The central directory at the end of a ZIP only names the parts; what a part is lies in its data, which has
streamed past by then (the upload goes straight to S3 and is not read back). So the package is walked from
its local file headers as the bytes arrive: every part's first inflated bytes are checked for executables
and OLE compound files (VBA projects and OLE objects, whatever their names), and the few small parts that
say what the others are, `[Content_Types].xml` and the `.rels` relationship parts, are kept (bounded) and
read for macro and ActiveX content types and for relationships that fetch content when the document opens
(a remote template, frame or object). At the end the sniffer checks that the central directory lists
exactly the parts walked here, so no part can hide from this walk.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable, Generator
from xml.etree import ElementTree

from pipelines.intake.refusal import UnsupportedContent

# A walker yields (offset, length) requests, is sent those bytes (fewer when the stream ends first) and
# returns the offset where its data ends; see sniff.py.
Walker = Generator[tuple[int, int], bytes, int | None]

_LOCAL_HEADER = b"PK\x03\x04"
_LOCAL_FIELDS = struct.Struct("<6xHH8xIIHH")  # flags, method, compressed and real sizes, name and extra lengths
_DESCRIPTOR = b"PK\x07\x08"
_ENCRYPTED, _DESCRIBED_AFTER = 0x1, 0x8  # general purpose flags: encrypted; sizes in a data descriptor
_STORED, _DEFLATED = 0, 8
_SPAN = 64 * 1024  # bytes asked for at once (below the sniffer's tail window)
_HEAD = 8  # inflated bytes of every part checked for executable and OLE signatures
_MAX_PART = 1024 * 1024  # a kept part, compressed or inflated: real ones are a few KiB
# Parts whose sizes only a data descriptor gives are inflated whole to find their end; a bomb stops here.
_MAX_INFLATED = 512 * 1024 * 1024
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

_MACROS = "Word documents with macros, ActiveX controls or OLE objects are not accepted."
_MALFORMED = "The DOCX package is malformed."
_TOO_LARGE = "A DOCX part that describes the package is too large to inspect."
_ACTIVE_TYPES = ("macroenabled", "vbaproject", "vbadata", "activex", "oleobject", "msdownload")
# Relationship types whose target is active whether inside the package or not.
_ACTIVE_RELATIONSHIPS = ("/vbaproject", "/oleobject", "/control", "/activexcontrolbinary", "/wordvbadata")
# Outside the package only a hyperlink is harmless: it waits for a click; anything else is fetched on opening.
_HYPERLINK = "/hyperlink"
_DECLARATION = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)


class DocxPackage:
    """The local entries of a ZIP seen so far; `walk()` is the sniffer's walker over the stream."""

    def __init__(self, executable: Callable[[bytes], str | None]) -> None:
        self.entries: list[tuple[int, str]] = []  # (local header offset, name) in stream order
        self._executable = executable  # the label of the executable a part's first bytes start, or None
        self._inflated = 0

    def walk(self) -> Walker:
        """Local entries one after the other up to the first thing that is not one (the central
        directory, in a well-formed ZIP); returns its offset, None when the stream ends first."""
        offset = 0
        while True:
            header = yield offset, _LOCAL_FIELDS.size
            if len(header) < _LOCAL_FIELDS.size or not header.startswith(_LOCAL_HEADER):
                return offset if len(header) == _LOCAL_FIELDS.size else None
            flags, method, packed, _size, name_len, extra_len = _LOCAL_FIELDS.unpack(header)
            raw_name = yield offset + _LOCAL_FIELDS.size, name_len
            name = raw_name.decode("utf-8", "replace")  # as zip_tail decodes the central directory's names
            self.entries.append((offset, name))
            if flags & _ENCRYPTED:
                raise UnsupportedContent("Encrypted ZIP entries are not accepted.", "archive")
            if method not in (_STORED, _DEFLATED) or (flags & _DESCRIBED_AFTER and method != _DEFLATED):
                raise UnsupportedContent(_MALFORMED)
            keep = _kept(name)
            start = offset + _LOCAL_FIELDS.size + name_len + extra_len
            length = None if flags & _DESCRIBED_AFTER else packed
            read = yield from self._data(start, length, method == _DEFLATED, keep)
            if read is None:
                return None
            head, content, end = read
            if flags & _DESCRIBED_AFTER:
                descriptor = yield end, 4
                end += 16 if descriptor == _DESCRIPTOR else 12
            self._check(name, head, content)
            offset = end

    def _data(
        self, start: int, length: int | None, deflated: bool, keep: bool
    ) -> Generator[tuple[int, int], bytes, tuple[bytes, bytes | None, int] | None]:
        """One entry's data from `start`, `length` bytes (None: a deflate stream read to its end):
        (first inflated bytes, the whole inflated content when kept, offset after the data), or None
        when the stream ends first. Only what the checks need is read: a kept part whole, another up
        to its first bytes (then skipped), one without a length inflated to its end and dropped."""
        if keep and length is not None and length > _MAX_PART:
            raise UnsupportedContent(_TOO_LARGE)
        inflater = zlib.decompressobj(-15) if deflated else None
        whole = keep or length is None  # every byte must go through the inflater
        out = bytearray()
        pos, stop = start, None if length is None else start + length
        while stop is None or pos < stop:
            want = _SPAN if stop is None else min(_SPAN, stop - pos)
            span = yield pos, want
            produced = span if inflater is None else self._inflate(inflater, span, whole)
            out += produced if keep else produced[: max(_HEAD - len(out), 0)]
            if len(out) > _MAX_PART:
                raise UnsupportedContent(_TOO_LARGE)
            if inflater is not None and inflater.eof:
                stop = pos + len(span) - len(inflater.unused_data) if stop is None else stop
                break
            if len(span) < want:
                return None
            pos += len(span)
            if not whole and len(out) >= _HEAD:
                break
        if keep and inflater is not None and not inflater.eof:
            raise UnsupportedContent(_MALFORMED)
        assert stop is not None
        return bytes(out[:_HEAD]), bytes(out) if keep else None, stop

    def _inflate(self, inflater: zlib._Decompress, span: bytes, whole: bool) -> bytes:
        """Inflate a span in bounded steps: all of it when `whole`, else only up to the first bytes."""
        produced = bytearray()
        data = span
        while not inflater.eof and (whole or len(produced) < _HEAD):
            try:
                piece = inflater.decompress(data, _SPAN)
            except zlib.error:
                raise UnsupportedContent(_MALFORMED) from None
            self._inflated += len(piece)
            if self._inflated > _MAX_INFLATED:
                raise UnsupportedContent("The DOCX package inflates to too much data to inspect.")
            if len(produced) <= _MAX_PART:  # past it a kept part is refused, and other parts need only their head
                produced += piece
            data = inflater.unconsumed_tail
            if not piece and not data:
                break
        return bytes(produced)

    def _check(self, name: str, head: bytes, content: bytes | None) -> None:
        if (label := self._executable(head)) is not None:
            raise UnsupportedContent(f"{label} embedded in a DOCX file are not accepted.", "polyglot")
        if head.startswith(_OLE):
            raise UnsupportedContent(_MACROS, "script")
        if content is None:
            return
        root = _xml(content)
        if name.lower() == "[content_types].xml":
            for element in root:
                if any(word in element.get("ContentType", "").lower() for word in _ACTIVE_TYPES):
                    raise UnsupportedContent(_MACROS, "script")
            return
        for element in root:
            kind = element.get("Type", "").lower()
            if kind.endswith(_ACTIVE_RELATIONSHIPS):
                raise UnsupportedContent(_MACROS, "script")
            if element.get("TargetMode", "").lower() == "external" and not kind.endswith(_HYPERLINK):
                raise UnsupportedContent(
                    "Word documents that load a template, frame or object from outside the file are not accepted.",
                    "script",
                )


def _kept(name: str) -> bool:
    lowered = name.lower()
    return lowered == "[content_types].xml" or lowered.endswith(".rels")


def _xml(content: bytes) -> ElementTree.Element:
    """A package part's XML; OPC forbids DTDs, so none is parsed (no entity can expand)."""
    if _DECLARATION.search(content):
        raise UnsupportedContent(_MALFORMED)
    try:
        return ElementTree.fromstring(content)
    except ElementTree.ParseError:
        raise UnsupportedContent(_MALFORMED) from None
