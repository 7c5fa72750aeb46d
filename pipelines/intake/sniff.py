"""Streaming content sniffing: decide what an upload really is from its bytes, and refuse what we won't store.

The client's Content-Type and filename are never trusted for the type (the filename only tells
Markdown from plain text). The inspector recognises formats by their magic signatures in the head of
the stream, validates text incrementally, and watches every byte of accepted binary formats for the
polyglot tricks: executables embedded anywhere, archives appended at the end, data hidden after a
format's own end marker. Memory stays bounded whatever the upload size: a 64 KiB head, a tail window
of 256-512 KiB, and a few bytes of carry-over between chunks.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pipelines.intake import file_names, zip_tail
from pipelines.intake.docx_package import DocxPackage
from pipelines.intake.refusal import UnsupportedContent

_HEAD_SIZE = 64 * 1024  # kept from the start of the stream; markup is judged on all of it
_DECIDE_AT = 4096  # head length at which every signature, and text vs binary, can be ruled on
_PROBES = (16, _DECIDE_AT, _HEAD_SIZE)  # head lengths at which classification is tried
_TAIL_SIZE = 256 * 1024  # window at the end of the stream for end records, trailers, appended data
_LOOKAHEAD = 24  # bytes past an executable signature its structural check reads
_PADDING = b"\x00\t\n\v\f\r "  # harmless bytes after a format's end marker
_SPAN = 4096  # bytes a walker asks for at once when skipping GIF data sub-blocks
# Work done in Python per stream is capped, so crafted data cannot make inspection crawl. Real files
# stay far below: random data hits an executable signature every ~4 GiB, PNG chunks and QuickTime
# atoms are KiBs to MiBs, and a 100 MB GIF holds ~400k sub-blocks (of 255 bytes).
_MAX_CHECKS = 10_000  # structural checks of executable-looking signatures
_MAX_STEPS = 250_000  # walker requests served
_MAX_SUB_BLOCKS = 2_000_000  # GIF data sub-blocks

_UNRECOGNISED = "The content is not a supported image, document or video, nor valid UTF-8/UTF-16 text."
_TOO_COSTLY = "The file is too fragmented or repetitive to be inspected safely."


@dataclass(frozen=True)
class Detected:
    media_type: str  # "image" | "document" | "video"
    content_type: str  # canonical MIME type
    format: str  # short format name, e.g. "jpeg", "pdf", "md", "mp4"
    document_type: str | None  # "pdf" | "docx" | "txt" | "md" for documents, else None


_FORMATS = {
    "jpeg": ("image", "image/jpeg"),
    "png": ("image", "image/png"),
    "gif": ("image", "image/gif"),
    "webp": ("image", "image/webp"),
    "tiff": ("image", "image/tiff"),
    "bmp": ("image", "image/bmp"),
    "heic": ("image", "image/heic"),
    "avif": ("image", "image/avif"),
    "pdf": ("document", "application/pdf"),
    "docx": ("document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "txt": ("document", "text/plain"),
    "md": ("document", "text/markdown"),
    "mp4": ("video", "video/mp4"),
    "mov": ("video", "video/quicktime"),
    "webm": ("video", "video/webm"),
    "mkv": ("video", "video/x-matroska"),
    "avi": ("video", "video/x-msvideo"),
}


def _detected(fmt: str) -> Detected:
    media_type, content_type = _FORMATS[fmt]
    return Detected(media_type, content_type, fmt, fmt if media_type == "document" else None)


# A walker follows a format's own structure through the stream: it yields (offset, length) requests,
# is sent those bytes (fewer only when the stream ends first), and returns the offset where the
# format's data ends (None when unknown). Structure errors raise UnsupportedContent.
_Walker = Generator[tuple[int, int], bytes, int | None]


@dataclass(frozen=True)
class _Binary:
    """An accepted binary format, and what to watch while the rest of it streams in."""

    detected: Detected | None  # None for a ZIP: DOCX or not is known once its central directory is read
    walker: _Walker | None = None
    end: int | None = None  # where the format's data ends (WebP: from the RIFF size)
    trailer: bytes | None = None  # JPEG/PDF end marker: an archive after it makes a polyglot
    min_size: int = 0  # BMP: the pixel data offset must lie inside the file
    package: DocxPackage | None = None  # a ZIP: its local entries, walked as they stream by


@dataclass(frozen=True)
class _Text:
    detected: Detected
    encoding: str  # "utf-8-sig" or "utf-16" (incremental decoders that also eat the BOM)
    prose: bool  # named .txt or .md: script-like lines in it are shown, not run


class ContentInspector:
    """Feed an upload chunk by chunk; UnsupportedContent is raised as soon as the bytes prove it
    unacceptable, so the caller can stop streaming, and finish() gives the final decision."""

    def __init__(self, filename: str | None = None) -> None:
        self._filename = filename
        self._head = bytearray()
        self._probed = 0
        self._size = 0
        self._stream: _BinaryStream | _TextStream | None = None
        self._error: UnsupportedContent | None = None
        self._result: Detected | None = None

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size

    def feed(self, chunk: bytes) -> None:
        """Inspect the next chunk; raises UnsupportedContent as soon as the stream is proven unacceptable."""
        if self._error is not None:
            raise self._error
        try:
            self._feed(bytes(chunk))
        except UnsupportedContent as exc:
            self._error = exc
            raise

    def finish(self) -> Detected:
        """End of stream: the final decision (checks that need the whole stream run here)."""
        if self._error is not None:
            raise self._error
        if self._result is None:
            try:
                self._result = self._finish()
            except UnsupportedContent as exc:
                self._error = exc
                raise
        return self._result

    def _feed(self, chunk: bytes) -> None:
        start = self._size
        self._size += len(chunk)
        if len(self._head) < _HEAD_SIZE:
            self._head += chunk[: _HEAD_SIZE - len(self._head)]
        if self._stream is None:
            # Classify on fixed head lengths only, so the outcome never depends on the chunk sizes.
            probe = max((n for n in _PROBES if n <= len(self._head)), default=0)
            if probe <= self._probed:
                return
            self._probed = probe
            self._stream = _open(_classify(bytes(self._head[:probe]), False, self._filename))
            if self._stream is None:
                return
            # Undecided until now means everything before this chunk is still in the head: replay it.
            chunk = bytes(self._head[:start]) + chunk
        self._stream.consume(chunk)

    def _finish(self) -> Detected:
        if self._size == 0:
            raise UnsupportedContent("The file is empty.", "empty_file")
        if self._stream is None:
            self._stream = _open(_classify(bytes(self._head), True, self._filename))
            assert self._stream is not None  # at the end of the stream classification always decides
            self._stream.consume(bytes(self._head))
        return self._stream.finish()


def detect(data: bytes, filename: str | None = None) -> Detected:
    """One-shot convenience (feeds data in one chunk)."""
    inspector = ContentInspector(filename)
    inspector.feed(data)
    return inspector.finish()


def _open(plan: _Binary | _Text | None) -> _BinaryStream | _TextStream | None:
    if plan is None:
        return None
    return _TextStream(plan) if isinstance(plan, _Text) else _BinaryStream(plan)


# --- classification of the head ----------------------------------------------------------------------

_EXECUTABLE_MAGICS = (
    (b"\x7fELF", "ELF executables"),
    (b"MZ", "Windows executables"),
    (b"\xfe\xed\xfa\xce", "Mach-O executables"),
    (b"\xfe\xed\xfa\xcf", "Mach-O executables"),
    (b"\xce\xfa\xed\xfe", "Mach-O executables"),
    (b"\xcf\xfa\xed\xfe", "Mach-O executables"),
    (b"\xca\xfe\xba\xbe", "Mach-O universal binaries and Java classes"),
    (b"\x00asm", "WebAssembly modules"),
)
_ARCHIVE_MAGICS = (
    (b"PK\x05\x06", "ZIP archives"),
    (b"PK\x07\x08", "ZIP archives"),
    (b"\x1f\x8b", "gzip files"),
    (b"BZh", "bzip2 files"),
    (b"\xfd7zXZ\x00", "xz files"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archives"),
    (b"Rar!\x1a\x07", "RAR archives"),
    (b"\x28\xb5\x2f\xfd", "Zstandard files"),
    (b"MSCF\x00\x00\x00\x00", "CAB archives"),
    (b"!<arch>\n", "ar archives"),
)
_FIXED_MAGICS: tuple[tuple[bytes, Callable[[], _Binary]], ...] = (
    (b"\xff\xd8\xff", lambda: _Binary(_detected("jpeg"), trailer=b"\xff\xd9")),
    (b"\x89PNG\r\n\x1a\n", lambda: _Binary(_detected("png"), walker=_png_end())),
    (b"GIF87a", lambda: _Binary(_detected("gif"), walker=_gif_end())),
    (b"GIF89a", lambda: _Binary(_detected("gif"), walker=_gif_end())),
    (b"II*\x00", lambda: _Binary(_detected("tiff"))),
    (b"MM\x00*", lambda: _Binary(_detected("tiff"))),
    (b"%PDF-", lambda: _pdf()),
    (b"PK\x03\x04", lambda: _zip()),
)
# Active markup: refused anywhere in a text, and in a PDF's head. Case-sensitive patterns, each starting
# with a literal, over a lower-cased copy, and only where there is a tag at all (one case-insensitive
# pattern of alternatives with the event handler check in it inspected text at 6 MiB/s). A match spans
# at most ~300 bytes: a stream carries that much over between chunks.
_ACTIVE_TAG = re.compile(
    rb"<(?:(?:script|iframe|frameset|frame|object|embed|applet|base|hta:application|job|package|component"
    rb"|scriptlet)[\s/>]|meta\s[^<>]{0,200}?http-equiv)"
)
_HANDLER = re.compile(rb"on[a-z]{3,}\s*=")  # an event handler attribute, when it is inside a tag
_BEFORE_ATTRIBUTE = frozenset(b" \t\n\r\f/\"'")
_TAG_REACH = 240  # how far before a handler its tag may start
_SCRIPT_URL = re.compile(rb"(?:(?:href|src|action|formaction|data)\s*=\s*[\"']?|\]\(\s*<?)\s*(?:java|vb)script:")
_ACTIVE_CARRY = 320
# Documents a browser renders as HTML or SVG (a PDF's head may hold XMP, so XML itself counts in text only).
_HTML_MARKUP = re.compile(rb"<(?:!doctype\s+html|html|head|body|svg)[\s/>]", re.IGNORECASE)
_DOCUMENT_MARKUP = re.compile(_HTML_MARKUP.pattern + rb"|<(?:!doctype|\?xml|xsl:)", re.IGNORECASE)


def _active_markup(data: bytes) -> bool:
    """Script elements, event handlers in tags, or script: URLs in links (attributes, Markdown)."""
    if b"<" not in data and b":" not in data:  # most prose: no lower-cased copy, no search
        return False
    lowered = data.lower()
    if b"<" in lowered and (
        _ACTIVE_TAG.search(lowered) or any(_in_tag(lowered, hit.start()) for hit in _HANDLER.finditer(lowered))
    ):
        return True
    return b"script:" in lowered and _SCRIPT_URL.search(lowered) is not None


def _in_tag(lowered: bytes, pos: int) -> bool:
    """An attribute at pos: after a space, slash or quote, inside a tag opened shortly before."""
    if pos == 0 or lowered[pos - 1] not in _BEFORE_ATTRIBUTE:
        return False
    tag = lowered.rfind(b"<", max(pos - _TAG_REACH, 0), pos)
    return tag != -1 and lowered[tag + 1 : tag + 2].isalpha() and lowered.find(b">", tag, pos) == -1


# Scripts without a shebang, by what starts their lines or what they call (Windows Script Host, ActiveX,
# PowerShell, cmd): judged on a lower-cased head where the name does not say prose. The calls' pattern
# runs only when one of its words is there (as one case-insensitive pattern they cost 38 ms a head).
_SCRIPT_LINES = re.compile(
    rb"^[ \t]*(?:\[internetshortcut\]|@?echo\s+off\b|windows registry editor version|regedit4\b)", re.MULTILINE
)
_SCRIPT_WORDS = (
    b"wscript.", b"createobject", b"activexobject", b"getobject", b"powershell", b"invoke-", b"iex", b"mshta", b"cmd"
)  # fmt: skip
_SCRIPT_CALLS = re.compile(
    rb"\bwscript\.\w|\bcreateobject\s*\(|\bactivexobject\b|\bgetobject\s*\(\s*[\"']script:"
    rb"|\bpowershell(?:\.exe)?\s+-\w|\binvoke-expression\b|\biex\s*\(|\bmshta(?:\.exe)?\s|\bcmd(?:\.exe)?\s+/[ck]\b"
)
_MARKDOWN = re.compile(r"^(?:#{1,6}[ \t]+\S|```|~~~)|\[[^\]\n]+\]\([^)\s]+\)", re.MULTILINE)
_LIST_ITEM = re.compile(r"^[ \t]{0,3}(?:[-*+]|\d{1,9}[.)])[ \t]+\S", re.MULTILINE)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _classify(view: bytes, at_end: bool, filename: str | None) -> _Binary | _Text | None:
    """Decide from the head what the stream is; None while the head is too short to tell."""
    plan = _by_signature(view)
    if plan is not None or (not at_end and len(view) < _DECIDE_AT):
        return plan
    return _by_content(view, at_end, filename)


def _executable(head: bytes) -> str | None:
    """What executable the bytes start, as a plural label ("ELF executables"), or None."""
    return next((label for magic, label in _EXECUTABLE_MAGICS if head.startswith(magic)), None)


def _by_signature(view: bytes) -> _Binary | None:
    """Formats with a signature at offset 0; None when none matches (or not enough bytes yet)."""
    if (label := _executable(view)) is not None:
        raise UnsupportedContent(f"{label} are not accepted.", "executable")
    for magic, label in _ARCHIVE_MAGICS:
        if view.startswith(magic):
            raise UnsupportedContent(f"{label} are not accepted.", "archive")
    for magic, plan in _FIXED_MAGICS:
        if view.startswith(magic):
            return plan()
    return _riff(view) or _bmp(view) or _iso_media(view) or _matroska(view)


def _by_content(view: bytes, at_end: bool, filename: str | None) -> _Binary | _Text | None:
    """What the signatures at offset 0 could not tell: tar, scripts, a PDF after some leading junk,
    text (its markup is judged as it streams), or unrecognised binary."""
    if view[257:262] == b"ustar":
        raise UnsupportedContent("tar archives are not accepted.", "archive")
    encoding = "utf-16" if view.startswith(_UTF16_BOMS) else "utf-8-sig"
    text = view.decode(encoding, "replace")
    if text.lstrip().startswith("#!"):
        raise UnsupportedContent("Scripts are not accepted.", "script")
    if b"%PDF-" in view[:1024]:
        return _pdf()
    extension = file_names.extension(filename)
    prose = extension in file_names.PROSE_EXTENSIONS
    plan = _Text(_detected("md" if _is_markdown(text, extension) else "txt"), encoding, prose)
    probe = _TextStream(plan)  # refuses binary (undecodable, NUL, control characters) and markup early
    probe.consume(view)
    probe.check_controls()
    if extension in file_names.SCRIPT_EXTENSIONS:
        raise UnsupportedContent(f"Scripts are not accepted: a {extension} file is run, not read.", "script")
    return plan


def _pdf() -> _Binary:
    return _Binary(_detected("pdf"), walker=_markup_free_head(), trailer=b"%%EOF")


def _zip() -> _Binary:
    package = DocxPackage(_executable)
    return _Binary(None, walker=package.walk(), package=package)


def _is_markdown(text: str, extension: str) -> bool:
    if extension in file_names.MARKDOWN_EXTENSIONS:
        return True
    return bool(_MARKDOWN.search(text)) or len(_LIST_ITEM.findall(text)) >= 3


def _u32(data: bytes | bytearray, pos: int, order: Literal["little", "big"]) -> int:
    """Unsigned 32-bit field at pos, or -1 when it is not all inside data."""
    return int.from_bytes(data[pos : pos + 4], order) if 0 <= pos <= len(data) - 4 else -1


def _riff(view: bytes) -> _Binary | None:
    if not view.startswith(b"RIFF"):
        return None
    if view[8:12] == b"WEBP":
        size = _u32(view, 4, "little")
        return _Binary(_detected("webp"), end=8 + size + size % 2)
    return _Binary(_detected("avi")) if view[8:12] == b"AVI " else None


_BMP_DIB_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})


def _bmp(view: bytes) -> _Binary | None:
    """'BM' also starts plenty of text, so the header must be plausible too."""
    if not view.startswith(b"BM") or len(view) < 18:
        return None
    pixels, dib = _u32(view, 10, "little"), _u32(view, 14, "little")
    if view[6:10] != bytes(4) or dib not in _BMP_DIB_SIZES or pixels < 14 + dib:
        return None
    return _Binary(_detected("bmp"), min_size=pixels)


_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "})
_MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso8", b"iso9", b"mp41", b"mp42", b"avc1",
     b"dash", b"M4V ", b"M4VH", b"M4VP", b"mmp4", b"MSNV", b"f4v ", b"XAVC", b"3gp4", b"3gp5", b"3gp6"}
)  # fmt: skip
_MOVIE_FIRST_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip"})


def _iso_media(view: bytes) -> _Binary | None:
    """ISO base media ('ftyp' box and its brands), or QuickTime starting straight with a movie atom."""
    size, kind = _u32(view, 0, "big"), view[4:8]
    if kind == b"ftyp":
        if not 16 <= size <= len(view):
            return None
        major = view[8:12]
        brands = {major, *(view[i : i + 4] for i in range(16, size - 3, 4))}
        return _Binary(_detected(_ftyp_format(major, brands)))
    if kind in _MOVIE_FIRST_ATOMS and (size in (0, 1) or size >= 8):
        return _Binary(_detected("mov"), walker=_quicktime_end())
    return None


def _ftyp_format(major: bytes, brands: set[bytes]) -> str:
    """Image brands win (HEIF images carry generic brands too), then the major brand decides."""
    if brands & _AVIF_BRANDS:
        return "avif"
    if brands & _HEIC_BRANDS:
        return "heic"
    if major not in _AUDIO_BRANDS:
        if major == b"qt  ":
            return "mov"
        if brands & _MP4_BRANDS:
            return "mp4"
        if b"qt  " in brands:
            return "mov"
    brand = major.decode("latin-1").strip()
    raise UnsupportedContent(f"ISO media of brand '{brand}' is not a supported image or video type.")


def _matroska(view: bytes) -> _Binary | None:
    if not view.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    doctype = _ebml_doctype(view)
    if doctype is None:
        return None
    fmt = {b"webm": "webm", b"matroska": "mkv"}.get(doctype)
    if fmt is None:
        raise UnsupportedContent(f"EBML documents of type '{doctype.decode('latin-1')}' are not supported.")
    return _Binary(_detected(fmt))


def _ebml_doctype(view: bytes) -> bytes | None:
    """DocType from the EBML header; None while the header is incomplete or when it is malformed."""
    try:
        size, pos = _vint(view, 4)
        end = pos + size
        if end > len(view):
            return None
        while pos < end:
            element, pos = _vint(view, pos, keep_marker=True)
            size, pos = _vint(view, pos)
            if element == 0x4282:
                return view[pos : pos + size].rstrip(b"\x00")
            pos += size
    except (IndexError, ValueError):
        return None
    return b""


def _vint(data: bytes, pos: int, keep_marker: bool = False) -> tuple[int, int]:
    """EBML variable-length integer at pos: (value, position after it). Element IDs keep the marker bit."""
    length = 9 - data[pos].bit_length()
    if length > 8 or pos + length > len(data):
        raise ValueError("bad or truncated EBML integer")
    value = int.from_bytes(data[pos : pos + length], "big")
    return (value if keep_marker else value & ((1 << 7 * length) - 1)), pos + length


# --- walkers: follow a format's structure to where its data ends ---------------------------------


def _png_end() -> _Walker:
    """PNG chunks up to IEND (and its CRC); whatever follows is not part of the image."""
    offset = 8
    while len(header := (yield offset, 8)) == 8:
        if not header[4:].isalpha():
            raise UnsupportedContent("The PNG chunk structure is corrupt.")
        offset += 12 + int.from_bytes(header[:4], "big")
        if header[4:] == b"IEND":
            return offset
    return None  # truncated: nothing follows the image


def _gif_end() -> _Walker:
    """GIF blocks (extensions, images and their data sub-blocks) up to the 0x3B trailer."""
    screen = yield 0, 13
    if len(screen) < 13:
        return None
    offset = 13 + _gif_color_table(screen[10])
    sub_blocks = 0
    while block := (yield offset, 1):
        if block == b";":
            return offset + 1
        if block == b"!":
            offset += 2  # introducer and label
        elif block == b",":
            descriptor = yield offset, 10
            if len(descriptor) < 10:
                return None
            offset += 10 + _gif_color_table(descriptor[9]) + 1  # + LZW minimum code size
        else:
            raise UnsupportedContent("The GIF block structure is corrupt.")
        while True:  # data sub-blocks, walked a span at a time, up to their zero-length terminator
            span = yield offset, _SPAN
            i = 0
            while i < len(span) and span[i]:
                i += span[i] + 1
                sub_blocks += 1
            if sub_blocks > _MAX_SUB_BLOCKS:
                raise UnsupportedContent(_TOO_COSTLY)
            if i < len(span):
                offset += i + 1
                break
            if len(span) < _SPAN:
                return None
            offset += i
    return None


def _markup_free_head() -> _Walker:
    """A PDF whose head (leading junk included) holds HTML or script is also a web page: a polyglot."""
    head = yield 0, _HEAD_SIZE
    if _active_markup(head) or _HTML_MARKUP.search(head):
        raise UnsupportedContent("A PDF file that is also an HTML document is not accepted.", "polyglot")
    return None


def _gif_color_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


_QUICKTIME_ATOMS = _MOVIE_FIRST_ATOMS | {b"ftyp", b"pnot", b"PICT", b"uuid", b"udta", b"meta"}


def _quicktime_end() -> _Walker:
    """Top-level QuickTime atoms: known atom types, tiling the file, one of them the 'moov' header."""
    offset: int | None = 0
    seen_moov = False
    while offset is not None:
        header = yield offset, 8
        if len(header) < 8:
            break
        size, kind = int.from_bytes(header[:4], "big"), header[4:]
        if kind not in _QUICKTIME_ATOMS:
            raise UnsupportedContent("The QuickTime atom structure is corrupt.")
        seen_moov = seen_moov or kind == b"moov"
        if size == 1:
            large = yield offset + 8, 8
            if len(large) < 8:
                break
            size = int.from_bytes(large, "big")
        if size == 0:
            offset = None  # the atom runs to the end of the file
        elif size < 8:
            raise UnsupportedContent("The QuickTime atom structure is corrupt.")
        else:
            offset += size
    if not seen_moov:
        raise UnsupportedContent("QuickTime data without a movie header is not accepted.")
    return offset


# --- streams: what runs on every chunk once the format is known ---------------------------------------

# C0 controls and DEL, except tab, line feed, form feed and carriage return.
_CONTROL_BYTES = bytes([*range(0x09), 0x0B, *range(0x0E, 0x20), 0x7F])


def _script_code(lowered: bytes) -> bool:
    if _SCRIPT_LINES.search(lowered):
        return True
    return any(word in lowered for word in _SCRIPT_WORDS) and _SCRIPT_CALLS.search(lowered) is not None


class _TextStream:
    """Validates text as it streams: decodable, no NUL, few control characters, no active markup
    anywhere; and its head (the first 64 KiB) holds no HTML, SVG or XML document, nor, unless the
    name says prose, a script's telltale lines."""

    def __init__(self, plan: _Text) -> None:
        self._detected = plan.detected
        self._prose = plan.prose
        self._utf8 = plan.encoding == "utf-8-sig"
        self._decoder = codecs.getincrementaldecoder(plan.encoding)()
        self._bytes = 0
        self._head: bytearray | None = bytearray()  # the head as UTF-8 until it is complete and judged
        self._chars = 0
        self._controls = 0
        self._carry = b""  # end of the previous chunk, so markup split across chunks is still seen

    def consume(self, data: bytes, final: bool = False) -> None:
        # The head is judged at a fixed offset, so the verdict never depends on the chunk sizes.
        cut = _HEAD_SIZE - self._bytes
        if 0 < cut < len(data):
            self.consume(data[:cut])
            data = data[cut:]
        self._bytes += len(data)
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError:
            raise UnsupportedContent(_UNRECOGNISED) from None
        raw = data if self._utf8 else text.encode("utf-8")  # controls and tags are ASCII in UTF-8
        if b"\x00" in raw:
            raise UnsupportedContent(_UNRECOGNISED)
        self._chars += len(text)
        self._controls += len(raw) - len(raw.translate(None, _CONTROL_BYTES))
        window = self._carry + raw
        if _active_markup(window):
            raise UnsupportedContent("Text containing a script or active HTML is not accepted.", "script")
        self._carry = window[-_ACTIVE_CARRY:]
        if self._head is not None:
            self._head += raw
            if self._bytes >= _HEAD_SIZE or final:
                self._judge_head(bytes(self._head))
                self._head = None

    def _judge_head(self, head: bytes) -> None:
        if _DOCUMENT_MARKUP.search(head):
            raise UnsupportedContent("HTML, SVG and XML documents are not accepted.")
        if not self._prose and _script_code(head.lower()):
            raise UnsupportedContent("Scripts are not accepted.", "script")

    def check_controls(self) -> None:
        if self._controls * 100 > self._chars:
            raise UnsupportedContent("The text contains too many control characters.")

    def finish(self) -> Detected:
        self.consume(b"", final=True)
        self.check_controls()
        return self._detected


_MACHO_CPU_TYPES = frozenset({7, 0x01000007, 12, 0x0100000C, 18, 0x01000012})


def _elf_at(buf: bytes | bytearray, pos: int) -> bool:
    """ELF identification (class, byte order, version) and e_version all valid."""
    ident = buf[pos + 4 : pos + 7]
    if len(ident) < 3 or ident[0] not in (1, 2) or ident[1] not in (1, 2) or ident[2] != 1:
        return False
    return _u32(buf, pos + 20, "little" if ident[1] == 1 else "big") == 1


def _pe_at(buf: bytes | bytearray, pos: int) -> bool:
    """'PE\\0\\0' that an 'MZ' header up to 4 KiB before points at through its e_lfanew field."""
    low = max(pos - 4096, 0)
    mz = buf.rfind(b"MZ", low, pos)
    while mz != -1:
        if _u32(buf, mz + 0x3C, "little") == pos - mz:
            return True
        mz = buf.rfind(b"MZ", low, mz + 1)
    return False


def _macho_at(buf: bytes | bytearray, pos: int) -> bool:
    """A thin Mach-O magic (either byte order) at pos, followed by a known CPU type."""
    order: Literal["little", "big"] = "big" if buf[pos : pos + 1] == b"\xfe" else "little"
    return _u32(buf, pos + 4, order) in _MACHO_CPU_TYPES


def _fat_macho_at(buf: bytes | bytearray, pos: int) -> bool:
    return 0 < _u32(buf, pos + 4, "big") <= 32 and _u32(buf, pos + 8, "big") in _MACHO_CPU_TYPES


_Check = tuple[bytes, Callable[[bytes | bytearray, int], bool]]
# Searched through the whole stream: each bytes.find pass costs ~0.7 ms per MiB here, so only the
# executables most used as polyglot payloads (Linux, Windows).
_STREAM_EXECUTABLES: tuple[_Check, ...] = (
    (b"\x7fELF", _elf_at),
    (b"PE\x00\x00", _pe_at),
)
# Searched in the tail window only (appended to a file): Mach-O of every kind.
_TAIL_EXECUTABLES: tuple[_Check, ...] = (
    (b"\xcf\xfa\xed\xfe", _macho_at),
    (b"\xce\xfa\xed\xfe", _macho_at),
    (b"\xfe\xed\xfa\xce", _macho_at),
    (b"\xfe\xed\xfa\xcf", _macho_at),
    (b"\xca\xfe\xba\xbe", _fat_macho_at),
)
# Archive headers with enough fixed or constrained bytes that random data never matches them.
_ARCHIVE_HEADER = re.compile(
    rb"PK\x03\x04[\x00-\x3f]\x00..[\x00\x08\x09\x0c\x0e\x5d\x5f\x62\x63]\x00"  # version, method
    rb"|Rar!\x1a\x07(?:\x00|\x01\x00)"
    rb"|7z\xbc\xaf\x27\x1c\x00"
    rb"|\xfd7zXZ\x00\x00"
    rb"|\x1f\x8b\x08[\x00-\x1f]....[\x00\x02\x04][\x00-\x0d\xff]"  # flags, mtime, extra flags, OS
    rb"|BZh[1-9](?:1AY&SY|\x17rE8P\x90)"
    rb"|MSCF\x00{4}"
    rb"|ustar(?:\x0000|  \x00)",
    re.DOTALL,
)


def _positions(buf: bytes | bytearray, needle: bytes, start: int, stop: int) -> list[int]:
    """Every offset in [start, stop) where `needle` (4 bytes or more) begins in `buf`, in order. numpy compares the
    buffer as 32-bit words, at each of the 4 alignments, at memory speed and without the GIL, where bytes.find walks
    it at about 1.3 GB/s per needle holding the GIL: the scan of every byte would otherwise bound an upload's (and
    a read-back's) throughput. The array views die on return, so `buf` may be resized again."""
    start, end = max(start, 0), min(stop + len(needle) - 1, len(buf))
    word = int.from_bytes(needle[:4], "little")
    found: list[int] = []
    for shift in range(4):
        count = (end - start - shift) // 4
        if count <= 0:
            continue
        hits = np.frombuffer(buf, dtype="<u4", count=count, offset=start + shift) == word
        if hits.any():
            found += (np.flatnonzero(hits) * 4 + start + shift).tolist()
    return sorted(pos for pos in found if pos + len(needle) <= end and buf[pos : pos + len(needle)] == needle)


class _BinaryStream:
    """Watches an accepted binary format for embedded executables, appended archives and data after
    the format's end; the tail buffer doubles as carry-over between chunks for the signature scan."""

    def __init__(self, plan: _Binary) -> None:
        self._plan = plan
        self._label = plan.detected.format.upper() if plan.detected else "ZIP"
        self._size = 0
        self._tail = bytearray()  # the last _TAIL_SIZE to 2 * _TAIL_SIZE bytes (+ the latest chunk)
        self._scanned = 0  # stream offset up to which executable signatures have been searched
        self._end = plan.end
        self._request = next(plan.walker) if plan.walker else None
        self._checks = 0
        self._steps = 0

    def consume(self, data: bytes) -> None:
        self._tail += data
        self._size += len(data)
        self._scan(self._size - _LOOKAHEAD)
        self._walk()
        if len(self._tail) > 2 * _TAIL_SIZE:
            del self._tail[:-_TAIL_SIZE]

    def finish(self) -> Detected:
        self._scan(self._size)
        self._walk(at_end=True)
        window = bytes(self._tail[-_TAIL_SIZE:])
        if self._found(window, _TAIL_EXECUTABLES, 0, len(window)):
            raise UnsupportedContent(f"An executable is appended to this {self._label} file.", "polyglot")
        if self._plan.package is not None:
            return _docx(window, self._size, self._plan.package.entries, self._end)
        if zip_tail.contains_zip(window):
            raise UnsupportedContent(f"A ZIP archive is hidden in this {self._label} file.", "polyglot")
        self._check_after_end(window)
        if self._size <= self._plan.min_size:
            raise UnsupportedContent("The BMP header points past the end of the file.")
        assert self._plan.detected is not None  # only a ZIP has none, and a ZIP has its package (returned above)
        return self._plan.detected

    def _scan(self, stop: int) -> None:
        base = self._size - len(self._tail)
        if stop > self._scanned and self._found(self._tail, _STREAM_EXECUTABLES, self._scanned - base, stop - base):
            raise UnsupportedContent(f"An executable is embedded in this {self._label} file.", "polyglot")
        self._scanned = max(self._scanned, stop)

    def _found(self, buf: bytes | bytearray, checks: tuple[_Check, ...], start: int, stop: int) -> bool:
        """Any signature starting in buf[start:stop] whose structural check passes."""
        for needle, verify in checks:
            for pos in _positions(buf, needle, start, stop):
                self._checks += 1
                if self._checks > _MAX_CHECKS:
                    raise UnsupportedContent(_TOO_COSTLY)
                if verify(buf, pos):
                    return True
        return False

    def _walk(self, at_end: bool = False) -> None:
        """Serve the walker's requests as far as the stream goes (at its end, with what is left)."""
        while self._request is not None:
            offset, length = self._request
            if offset + length > self._size and not at_end:
                return
            start = offset - (self._size - len(self._tail))
            self._advance(bytes(self._tail[start : start + length]))

    def _advance(self, data: bytes) -> None:
        assert self._plan.walker is not None
        self._steps += 1
        if self._steps > _MAX_STEPS:
            raise UnsupportedContent(_TOO_COSTLY)
        try:
            self._request = self._plan.walker.send(data)
        except StopIteration as stop:
            self._request = None
            self._end = stop.value

    def _check_after_end(self, window: bytes) -> None:
        """Data after the format's own end: anything but padding (PNG, GIF, WebP, QuickTime), or an
        archive header after the first end marker in the window (JPEG EOI, PDF %%EOF)."""
        if self._end is not None and self._end < self._size:
            trailing = window[max(self._end - (self._size - len(window)), 0) :]
            if trailing.strip(_PADDING):
                raise UnsupportedContent(f"Data is hidden after the end of this {self._label} file.", "polyglot")
        if self._plan.trailer is not None:
            marker = window.find(self._plan.trailer)
            start = marker + len(self._plan.trailer) if marker != -1 else 0
            if _ARCHIVE_HEADER.search(window, start):
                raise UnsupportedContent(f"An archive is appended to this {self._label} file.", "polyglot")


def _docx(window: bytes, size: int, walked: list[tuple[int, str]], walked_to: int | None) -> Detected:
    """A ZIP is accepted only as a DOCX, read from its central directory, which must list exactly the
    entries walked in the stream (a part only the directory points at was never inspected)."""
    directory = zip_tail.central_directory(window, size - len(window))
    if directory is None:
        raise UnsupportedContent("The ZIP container is malformed or too large to inspect.", "archive")
    names = [name.lower() for _, name in directory.entries]  # OPC part names are case-insensitive
    if not {"[content_types].xml", "word/document.xml"} <= set(names):
        raise UnsupportedContent("ZIP archives are not accepted (only DOCX documents).", "archive")
    if any(name.endswith("vbaproject.bin") for name in names):
        raise UnsupportedContent("Macro-enabled Word documents are not accepted.", "script")
    if directory.entries != walked or directory.offset != walked_to:
        raise UnsupportedContent("The DOCX central directory does not match its entries.", "polyglot")
    return _detected("docx")
