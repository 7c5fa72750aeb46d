"""Text extraction for documents (PDF, DOCX, TXT, MD): the pure part of the document pipeline (no S3, no DB).

`extract()` reads a document once and returns its plain text per page, its language and the pages that need
OCR, together with the layout blocks (lines with font size and weight, tables, images) that `digitize` reuses,
so a PDF page is interpreted by MuPDF once for everything: one text page, read as a dict, in which MuPDF's own
table hunter (C, from ruling lines) finds the tables. pymupdf's Python `find_tables()` runs at ~40 pages/s
and pymupdf-layout's ONNX model at ~1 page/s on two cores; this pass runs at several hundred. `with_ocr()`
puts the lines that OCR read on scanned pages in their place (pipelines/document/scanned_pages.py).

The work is bounded by what it reads (`Limits`, a DocumentError beyond): pages and characters of text; a DOCX
package's expanded size, and its XML elements and nesting, counted as they are parsed before python-docx builds
an object (pipelines/document/xml_bounds.py). Paragraph styles are resolved once per document, not once per
paragraph, so a package of many paragraphs and many styles costs their sum, not their product.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import IO, Any, Literal

import docx
import pymupdf
from docx.oxml.text.paragraph import CT_P
from docx.oxml.text.parfmt import CT_PPr
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.styles import BabelFish
from docx.table import Table
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from pipelines.document.xml_bounds import XmlBounds, XmlTooLarge, check_xml

log = logging.getLogger(__name__)

MAX_DOCX_EXPANDED_BYTES = 256 * 1024 * 1024
DOCUMENT_TYPES = ("pdf", "docx", "txt", "md")

# get_text()'s flags, plus vector collection, which MuPDF's table hunter needs to see ruling lines. Images are
# not in the pass: their bytes would be copied into Python (and a Flate image re-encoded to PNG: ~1 s a page).
_PDF_FLAGS = pymupdf.TEXTFLAGS_TEXT | pymupdf.TEXT_COLLECT_VECTORS | pymupdf.TEXT_TABLE_HUNT
_BOLD = pymupdf.TEXT_FONT_BOLD
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_HEADING_STYLE = re.compile(r"^Heading ([1-9])$")
_LANGUAGE_SAMPLE_CHARS = 4_000
_LANGUAGE_MIN_LETTERS = 20
_LANGUAGE_MIN_PROBABILITY = 0.8

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in PDF points


@dataclass(frozen=True)
class Limits:
    """How much of a document is read (small and picklable: it travels to the Ray worker)."""

    max_pages: int = 2_000
    max_chars: int = 10_000_000
    # A real 500-page report has well under 200,000 elements (paragraphs, runs, their properties).
    max_xml_elements: int = 200_000
    max_xml_depth: int = 100  # tables in tables, content controls: real documents nest a few dozen at most


class DocumentError(Exception):
    """A document we cannot read (corrupt, password-protected, over the limits); str(exc) is a clear message."""


@dataclass(frozen=True, slots=True)
class Line:
    """One line of text as laid out: what digitize needs to tell headings, lists and key-value lines apart."""

    text: str
    bbox: Box | None  # None where the format has no layout (DOCX)
    size: float = 0.0  # font size in points of the line's longest span
    bold: bool = False


@dataclass(frozen=True, slots=True)
class Block:
    """A unit of layout in reading order: a text block, a table (rows of cell texts) or an image."""

    kind: Literal["text", "table", "image"]
    bbox: Box | None = None
    lines: tuple[Line, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    heading_level: int = 0  # DOCX: from the paragraph style (Title, Heading N)
    list_item: bool = False  # DOCX: a List style or a numbered paragraph


@dataclass(slots=True)
class Page:
    number: int  # 1-based
    text: str
    width: float | None = None  # PDF points
    height: float | None = None
    blocks: tuple[Block, ...] = field(default=(), repr=False)  # empty for TXT/MD: digitize parses the text
    needs_ocr: bool = False  # no text layer, but images: a scanned page
    ocr: bool = False  # its lines were read by OCR from the rendered page (they have no font size)
    error: str | None = None  # the page could not be parsed (the others still are)


@dataclass(slots=True)
class ExtractedDocument:
    document_type: str
    text: str  # pages separated by blank lines
    pages: list[Page]
    page_count: int | None
    language: str | None  # ISO 639-1, None when it cannot be told
    needs_ocr_pages: list[int]


def extract(data: bytes | IO[bytes], document_type: str, limits: Limits = Limits()) -> ExtractedDocument:
    """Read a document of `document_type` ("pdf", "docx", "txt", "md"); raise DocumentError if it cannot be."""
    raw = data if isinstance(data, bytes) else data.read()
    if document_type == "pdf":
        pages = _pdf_pages(raw, limits.max_pages, limits.max_chars)
    elif document_type == "docx":
        pages = _docx_pages(raw, limits)
    elif document_type in ("txt", "md"):
        pages = _text_pages(raw, limits.max_pages, limits.max_chars)
    else:
        raise DocumentError(
            f"Unsupported document type {document_type!r}; expected one of {', '.join(DOCUMENT_TYPES)}."
        )
    return _document(document_type, pages)


def with_ocr(document: ExtractedDocument, read: Mapping[int, Sequence[Mapping[str, Any]]]) -> ExtractedDocument:
    """The document with the pages in `read` (page number -> OCR regions, `{"text", "bounding_box": {"x", "y",
    "w", "h"}}` as fractions of the rendered page) made of the lines OCR read there."""
    pages = [_ocr_page(page, read[page.number]) if page.number in read else page for page in document.pages]
    return _document(document.document_type, pages)


def _document(document_type: str, pages: list[Page]) -> ExtractedDocument:
    text = "\n\n".join(page.text for page in pages if page.text)
    return ExtractedDocument(
        document_type=document_type,
        text=text,
        pages=pages,
        page_count=len(pages),
        language=detect_language(text),
        needs_ocr_pages=[page.number for page in pages if page.needs_ocr],
    )


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language (py3langid, 97 languages), or None when the sample is too short
    or the guess is not confident."""
    sample = text[:_LANGUAGE_SAMPLE_CHARS]
    if sum(char.isalpha() for char in sample) < _LANGUAGE_MIN_LETTERS:
        return None
    language, probability = _language_identifier().classify(sample)
    return language if probability >= _LANGUAGE_MIN_PROBABILITY and len(language) == 2 else None


@cache
def _language_identifier() -> LanguageIdentifier:
    """Loaded once per process (~1 s): normalised probabilities make the confidence threshold meaningful."""
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


class _TextBudget:
    """Counts characters across pages so a huge text layer stops the work early."""

    def __init__(self, max_chars: int) -> None:
        self.left = max_chars
        self.max_chars = max_chars

    def spend(self, text: str) -> None:
        self.left -= len(text)
        if self.left < 0:
            raise DocumentError(
                f"The document has more than {self.max_chars:,} characters of text; it is not processed."
            )


def _check_page_count(count: int, max_pages: int) -> None:
    if count > max_pages:
        raise DocumentError(f"The document has {count:,} pages; at most {max_pages:,} are processed.")


# --- PDF ---------------------------------------------------------------------------------------------------


def _pdf_pages(raw: bytes, max_pages: int, max_chars: int) -> list[Page]:
    pymupdf.TOOLS.mupdf_display_errors(False)  # MuPDF's repair chatter on stderr; failures still raise
    pymupdf.TOOLS.mupdf_display_warnings(False)
    try:
        document = pymupdf.open(stream=raw, filetype="pdf")
    except Exception as exc:  # pymupdf raises FileDataError, RuntimeError or MuPDF's own errors
        raise DocumentError("The PDF is corrupt and cannot be opened.") from exc
    with document:
        if document.needs_pass:
            raise DocumentError("The PDF is password-protected; upload it without the password.")
        if document.page_count == 0:
            raise DocumentError("The PDF is corrupt: no page could be found in it.")
        _check_page_count(document.page_count, max_pages)
        budget = _TextBudget(max_chars)
        pages = []
        for index in range(document.page_count):
            page = _pdf_page(document, index)
            budget.spend(page.text)
            pages.append(page)
        return pages


def _pdf_page(document: pymupdf.Document, index: int) -> Page:
    number = index + 1
    try:
        page = document.load_page(index)
        parsed = page.get_textpage(flags=_PDF_FLAGS).extractDICT()
        images = page.get_image_info() if page.get_images() else []  # the cheap resource check spares a pass
    except Exception:  # a broken page (bad content stream, missing object) fails alone; MuPDF's words go to the log
        log.info("PDF page %s could not be parsed", number, exc_info=True)
        return Page(number, "", error=f"Page {number} could not be parsed: its content is damaged.")
    blocks = [block for raw in parsed["blocks"] for block in _pdf_blocks(raw)]
    text = "\n".join(map(_block_text, blocks))
    for info in images:
        x0, y0, x1, y1 = info["bbox"]
        if x1 > x0 and y1 > y0:
            _insert_image(blocks, (x0, y0, x1, y1))
    rect = page.rect
    return Page(
        number,
        text,
        width=rect.width,
        height=rect.height,
        blocks=tuple(blocks),
        needs_ocr=not text.strip() and bool(images),
    )


def _pdf_blocks(raw: dict) -> list[Block]:
    """Text blocks as they are; a hunted table as rows of cells (unless it is a mere frame around text)."""
    if raw["type"] == 0:
        lines = tuple(filter(None, map(_pdf_line, raw["lines"])))
        return [Block("text", raw["bbox"], lines)] if lines else []
    if raw["type"] != 2:  # 1 image (not requested), 3 vector, 4 grid lines
        return []
    children = raw.get("blocks", [])
    if raw.get("std") == "Table":
        rows = tuple(
            tuple(_cell_text(cell) for cell in row.get("blocks", []) if cell["type"] == 2)
            for row in children
            if row["type"] == 2
        )
        if len(rows) >= 2 and max(map(len, rows)) >= 2:
            return [Block("table", tuple(raw["bbox"]), rows=rows)]
    return [block for child in children for block in _pdf_blocks(child)]


def _cell_text(cell: dict) -> str:
    return " ".join(_block_text(block).replace("\n", " ") for block in _pdf_blocks(cell))


def _pdf_line(raw: dict) -> Line | None:
    """The line's text, the size of its longest span, bold when every span is; None when it is blank."""
    spans = raw["spans"]
    if len(spans) == 1:  # most lines: no list to build
        span = spans[0]
        text = span["text"].strip()
        bold = bool(span["flags"] & _BOLD) or "Bold" in span["font"]
        return Line(text, raw["bbox"], round(span["size"], 1), bold) if text else None
    spans = [span for span in spans if span["text"].strip()]
    if not spans:
        return None
    main = max(spans, key=lambda span: len(span["text"]))
    bold = all(span["flags"] & _BOLD or "Bold" in span["font"] for span in spans)
    text = "".join(span["text"] for span in raw["spans"]).strip()
    return Line(text, raw["bbox"], round(main["size"], 1), bold)


def _insert_image(blocks: list[Block], box: Box) -> None:
    """Images are not in the text pass: place each before the first block that starts below its top."""
    block = Block("image", box)
    for index, other in enumerate(blocks):
        if other.bbox is not None and other.bbox[1] > box[1]:
            blocks.insert(index, block)
            return
    blocks.append(block)


def _block_text(block: Block) -> str:
    if block.kind == "table":
        return "\n".join(" | ".join(row) for row in block.rows)
    return "\n".join(line.text for line in block.lines)


def _ocr_page(page: Page, regions: Sequence[Mapping[str, Any]]) -> Page:
    """A scanned page as one text block of the lines OCR read, in PDF points like any text layer's."""
    read = _ocr_lines(regions, page.width or 1.0, page.height or 1.0)
    lines = tuple(Line(text, box) for box, text in read)
    blocks = (Block("text", _union([box for box, _ in read]), lines),) if lines else ()
    text = "\n".join(line.text for line in lines)
    return Page(page.number, text, page.width, page.height, blocks=blocks, ocr=True)


def _ocr_lines(regions: Sequence[Mapping[str, Any]], width: float, height: float) -> list[tuple[Box, str]]:
    """Each line's box and text. Regions come top to bottom; one whose vertical centre falls within the previous
    region's height continues its line (left to right), any other starts the next line."""
    grouped: list[list[tuple[Box, str]]] = []
    previous: Box | None = None
    for region in regions:
        if not (text := " ".join(region["text"].split())):
            continue
        box = region["bounding_box"]
        bbox = (box["x"] * width, box["y"] * height, (box["x"] + box["w"]) * width, (box["y"] + box["h"]) * height)
        if previous is not None and previous[1] <= (bbox[1] + bbox[3]) / 2 <= previous[3]:
            grouped[-1].append((bbox, text))
        else:
            grouped.append([(bbox, text)])
        previous = bbox
    lines = []
    for parts in grouped:
        parts.sort(key=lambda part: part[0][0])
        lines.append((_union([bbox for bbox, _ in parts]), " ".join(text for _, text in parts)))
    return lines


def _union(boxes: Sequence[Box]) -> Box:
    return (
        min(box[0] for box in boxes),
        min(box[1] for box in boxes),
        max(box[2] for box in boxes),
        max(box[3] for box in boxes),
    )


# --- DOCX --------------------------------------------------------------------------------------------------


def _docx_pages(raw: bytes, limits: Limits) -> list[Page]:
    """Pages end at explicit breaks (page breaks, page-break-before, section breaks): DOCX has no rendered
    pages, so page_count is the number of breaks + 1, not what Word would print."""
    _check_docx_package(raw, XmlBounds(limits.max_xml_elements, limits.max_xml_depth))
    try:
        document = docx.Document(io.BytesIO(raw))
        styles = _ParagraphStyles(document.styles.element)
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors ... on a broken package
        raise DocumentError("The DOCX file is corrupt or not a Word document.") from exc
    budget = _TextBudget(limits.max_chars)
    pages: list[list[Block]] = [[]]

    def new_page() -> None:
        pages.append([])
        _check_page_count(len(pages), limits.max_pages)

    for child in _body_items(document.element.body):
        if child.tag == f"{_W}tbl":
            rows = _docx_rows(Table(child, document))
            budget.spend("".join("".join(row) for row in rows))
            pages[-1].append(Block("table", rows=rows))
        else:  # a paragraph
            properties = child.pPr
            if properties is not None and _is_on(properties.find(f"{_W}pageBreakBefore")) and pages[-1]:
                new_page()
            level, list_item = styles.kind(child)
            for segment_index, text in enumerate(_docx_segments(child)):
                if segment_index:
                    new_page()
                if text.strip():
                    budget.spend(text)
                    line = Line(text.strip(), None)
                    pages[-1].append(Block("text", lines=(line,), heading_level=level, list_item=list_item))
            if properties is not None and _ends_section_with_new_page(properties):
                new_page()
    return [
        Page(number, "\n".join(_block_text(block) for block in blocks), blocks=tuple(blocks))
        for number, blocks in enumerate(pages, start=1)
    ]


def _body_items(element: BaseOxmlElement) -> Iterator[BaseOxmlElement]:
    """Paragraphs and tables in document order, including those inside content controls (a table of contents,
    a cover page)."""
    for child in element.iterchildren():
        if child.tag in (f"{_W}sdt", f"{_W}sdtContent"):
            yield from _body_items(child)
        elif child.tag in (f"{_W}p", f"{_W}tbl"):
            yield child


def _check_docx_package(raw: bytes, bounds: XmlBounds) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as package:
            expanded = sum(member.file_size for member in package.infolist())
            if expanded > MAX_DOCX_EXPANDED_BYTES:
                raise DocumentError(
                    f"The DOCX file expands to more than {MAX_DOCX_EXPANDED_BYTES // 2**20} MB; not processed."
                )
            check_xml(package, bounds)
    except (zipfile.BadZipFile, ValueError, zlib.error, EOFError) as exc:
        raise DocumentError("The DOCX file is corrupt (not a valid ZIP package).") from exc
    except XmlTooLarge as exc:
        raise DocumentError(str(exc)) from None


class _ParagraphStyles:
    """Paragraph style names by id, read once from the styles part (python-docx's `Paragraph.style` scans every
    style for the default one on each call)."""

    def __init__(self, styles: BaseOxmlElement | None) -> None:
        self.names: dict[str, str] = {}
        self.default = ""
        for style in () if styles is None else styles.iterchildren(f"{_W}style"):
            if style.get(f"{_W}type") != "paragraph":
                continue
            name = style.find(f"{_W}name")
            ui_name = BabelFish.internal2ui(name.get(f"{_W}val", "")) if name is not None else ""
            self.names[style.get(f"{_W}styleId", "")] = ui_name
            if style.get(f"{_W}default") is not None and _is_on(style, "default"):
                self.default = ui_name

    def kind(self, paragraph: CT_P) -> tuple[int, bool]:
        """(heading level, is a list item) from the style name, or numbering properties for lists."""
        properties = paragraph.pPr
        style_id = properties.pStyle.val if properties is not None and properties.pStyle is not None else None
        name = self.names.get(style_id or "", self.default)
        if name == "Title":
            return 1, False
        if match := _HEADING_STYLE.match(name):
            return int(match.group(1)), False
        numbered = properties is not None and properties.numPr is not None
        return 0, name.startswith("List") or numbered


def _docx_segments(paragraph_element: CT_P) -> list[str]:
    """The paragraph's text, split where it holds a page break (runs in hyperlinks and fields included)."""
    segments: list[list[str]] = [[]]
    for node in paragraph_element.iter(f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr"):
        if node.tag == f"{_W}t":
            segments[-1].append(node.text or "")
        elif node.tag == f"{_W}tab":
            segments[-1].append("\t")
        elif node.get(f"{_W}type") == "page":
            segments.append([])
        else:
            segments[-1].append("\n")
    return ["".join(parts) for parts in segments]


def _docx_rows(table: Table) -> tuple[tuple[str, ...], ...]:
    """Cell texts per row; a merged cell, which python-docx repeats for each grid column it spans, once."""
    rows = []
    for row in table.rows:
        cells, previous = [], None
        for cell in row.cells:
            if cell._tc is not previous:
                cells.append(" ".join(cell.text.split()))
            previous = cell._tc
        rows.append(tuple(cells))
    return tuple(rows)


def _is_on(element: BaseOxmlElement | None, attribute: str = "val") -> bool:
    return element is not None and element.get(f"{_W}{attribute}") not in ("0", "false", "off")


def _ends_section_with_new_page(properties: CT_PPr) -> bool:
    section = properties.find(f"{_W}sectPr")
    if section is None:
        return False
    kind = section.find(f"{_W}type")
    return kind is None or kind.get(f"{_W}val") != "continuous"


# --- TXT and MD --------------------------------------------------------------------------------------------


def _text_pages(raw: bytes, max_pages: int, max_chars: int) -> list[Page]:
    """UTF-8 (with or without BOM) or UTF-16 with a BOM; form feeds (as pdftotext writes them) split pages."""
    encoding = "utf-16" if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DocumentError("The text is neither UTF-8 nor UTF-16 with a byte-order mark.") from exc
    _TextBudget(max_chars).spend(text)
    parts = text.replace("\r\n", "\n").replace("\r", "\n").split("\f")
    _check_page_count(len(parts), max_pages)
    return [Page(number, part.strip("\n")) for number, part in enumerate(parts, start=1)]
