"""Structural digitization: per page, typed elements in reading order with normalised bounding boxes.

`digitize()` works on what `document_text.extract()` read, so a PDF page is never parsed twice. Element types
are the spec's: heading (with a level), paragraph, table (as Markdown), key_value, list and figure. PDF
structure comes from layout alone: heading levels from font size relative to the document's body size (a
bold line at body size is the lowest heading level), lists from bullet glyphs and numbering, figures from
image placements (with a caption just below). DOCX structure comes from paragraph styles; TXT and MD from
Markdown syntax. Formats without pages have no geometry: their bounding boxes are None.

A page without a text layer but with images is a scanned page: its status is "needs_ocr" until OCR has read it
(pipelines/document/scanned_pages.py); then its lines are grouped like a text layer's, without headings (OCR tells no
font sizes).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.document.extraction import Block, Box, ExtractedDocument, Line, Page

COMPLETED, FAILED, NEEDS_OCR = "completed", "failed", "needs_ocr"

_HEADING_SIZE_RATIO = 1.15  # a line at least this much larger than the body text is a heading
_MAX_HEADING_WORDS = 25
_MAX_LEVEL = 6
_MIN_FIGURE_POINTS = 20  # smaller images are icons and rules, not figures
_BACKGROUND_SHARE = 0.9  # an image this large on a page with text is its background (a scan under OCR text)
_BULLET = re.compile(
    r"^(?:[•·▪▫‣◦●○■□➢➤✓✔*+\-–—\uf0a7\uf0b7\uf076\uf0d8]\s+(?P<glyph>\S.*)|\(?(?:\d{1,3}|[a-z])[.)]\s+\S.*)$"
)
_KEY_VALUE = re.compile(r"^(?P<key>[^\W\d_][^:]{0,39}?)\s*:\s+(?P<value>\S.{0,199})$")
_CAPTION = re.compile(r"^(?:fig(?:ure)?\.?|image|photo|chart|diagram|abbildung|illustration)\s*\d", re.IGNORECASE)
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_MD_BULLET = re.compile(r"^\s*(?:[-*+•]\s+(?P<glyph>\S.*)|\d{1,3}[.)]\s+\S.*)$")
_MD_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?$")
_MD_THEMATIC_BREAK = re.compile(r"^(?:(?:-\s*){3,}|(?:\*\s*){3,}|(?:_\s*){3,})$")


@dataclass(frozen=True, slots=True)
class BoundingBox:
    x: float
    y: float
    w: float
    h: float


@dataclass(slots=True)
class Element:
    type: str  # heading | paragraph | table | key_value | list | figure
    content: str
    bounding_box: BoundingBox | None
    metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        box = self.bounding_box
        shape: dict[str, Any] = {
            "type": self.type,
            "content": self.content,
            "bounding_box": None if box is None else {"x": box.x, "y": box.y, "w": box.w, "h": box.h},
        }
        if self.metadata:
            shape["metadata"] = self.metadata
        return shape


@dataclass(slots=True)
class DigitizedPage:
    page_number: int
    status: str  # completed | failed | needs_ocr
    elements: list[Element] = field(default_factory=list)
    error_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "page_number": self.page_number,
            "status": self.status,
            "element_count": len(self.elements),
            "elements": [element.to_dict() for element in self.elements],
            "error_message": self.error_message,
        }


@dataclass(slots=True)
class Digitization:
    pages: list[DigitizedPage]

    @property
    def total_pages(self) -> int:
        return len(self.pages)

    @property
    def completed_pages(self) -> int:
        return sum(page.status == COMPLETED for page in self.pages)

    @property
    def failed_pages(self) -> int:
        return sum(page.status == FAILED for page in self.pages)

    @property
    def status(self) -> str:
        """Failed only when no page could be parsed; a scanned page is not a failure."""
        return FAILED if self.pages and self.failed_pages == self.total_pages else COMPLETED

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "total_pages": self.total_pages,
            "completed_pages": self.completed_pages,
            "failed_pages": self.failed_pages,
            "pages": [page.to_dict() for page in self.pages],
        }


def digitize(document: ExtractedDocument) -> Digitization:
    """Every page of an extracted document as elements; a page that failed or needs OCR keeps that status."""
    styles = _FontStyles.of(document.pages) if document.document_type == "pdf" else None
    pages = []
    for page in document.pages:
        if page.error is not None:
            pages.append(DigitizedPage(page.number, FAILED, error_message=page.error))
        elif page.needs_ocr:
            pages.append(DigitizedPage(page.number, NEEDS_OCR))
        elif styles is not None:
            pages.append(DigitizedPage(page.number, COMPLETED, _pdf_elements(page, styles)))
        elif page.blocks:
            pages.append(DigitizedPage(page.number, COMPLETED, _docx_elements(page.blocks)))
        else:
            pages.append(DigitizedPage(page.number, COMPLETED, _text_elements(page.text)))
    return Digitization(pages)


def markdown_table(rows: Iterable[Iterable[str]]) -> str:
    """Rows of cell texts as a Markdown table, the first row as its header (padded to the widest row)."""
    cells = [[" ".join(cell.split()).replace("|", "\\|") for cell in row] for row in rows]
    width = max(map(len, cells))
    lines = ["| " + " | ".join(row + [""] * (width - len(row))) + " |" for row in cells]
    lines.insert(1, "|" + "---|" * width)
    return "\n".join(lines)


# --- shared grouping ---------------------------------------------------------------------------------------


class _Flow:
    """Groups consecutive lines into elements: one open paragraph, list or heading at a time."""

    def __init__(self, page: Page | None = None) -> None:
        self.elements: list[Element] = []
        self.page = page
        self.kind: str | None = None
        self.parts: list[str] = []
        self.boxes: list[Box] = []
        self.level = 0

    def open(self, kind: str, text: str, box: Box | None = None, level: int = 0) -> None:
        self.close()
        self.kind, self.parts, self.level = kind, [text], level
        self.boxes = [box] if box else []

    def extend(self, text: str, box: Box | None = None, separator: str = " ") -> None:
        self.parts[-1] += separator + text
        if box:
            self.boxes.append(box)

    def add_item(self, text: str, box: Box | None = None) -> None:
        self.parts.append(text)
        if box:
            self.boxes.append(box)

    def close(self) -> None:
        if self.kind is None:
            return
        kind, content, metadata = self.kind, "\n".join(self.parts), None
        if kind == "heading":
            if len(content.split()) > _MAX_HEADING_WORDS:  # a bold or large paragraph, not a title
                kind = "paragraph"
            else:
                metadata = {"level": self.level}
        self.emit(kind, content, self.boxes, metadata)
        self.kind = None

    def emit(self, kind: str, content: str, boxes: list[Box], metadata: dict[str, Any] | None = None) -> None:
        self.elements.append(Element(kind, content, self._normalise(boxes), metadata))

    def key_value(self, pair: tuple[str, str], box: Box | None = None) -> None:
        self.close()
        key, value = pair
        self.emit("key_value", f"{key}: {value}", [box] if box else [], {"key": key, "value": value})

    def _normalise(self, boxes: list[Box]) -> BoundingBox | None:
        """The union of the boxes as fractions of the page, clamped to it (None without page geometry)."""
        if self.page is None or not boxes or not self.page.width or not self.page.height:
            return None
        width, height = self.page.width, self.page.height
        lefts, tops, rights, bottoms = zip(*boxes, strict=True)
        x0 = max(0.0, min(lefts) / width)
        y0 = max(0.0, min(tops) / height)
        x1 = min(1.0, max(rights) / width)
        y1 = min(1.0, max(bottoms) / height)
        return BoundingBox(round(x0, 4), round(y0, 4), round(max(0.0, x1 - x0), 4), round(max(0.0, y1 - y0), 4))


def _key_value(text: str) -> tuple[str, str] | None:
    """("Key", "value") for a "Key: value" line whose key is a short label (at most four words)."""
    match = _KEY_VALUE.match(text)
    if match is None or len(match["key"].split()) > 4:
        return None
    return match["key"].strip(), match["value"].strip()


def _table_metadata(rows: Sequence[Sequence[str]]) -> dict[str, int]:
    return {"rows": len(rows), "columns": max(map(len, rows))}


def _list_item(match: re.Match) -> str:
    """A bullet glyph is dropped; a number or letter is kept, as it carries meaning."""
    return match["glyph"] or match.group(0).strip()


# --- PDF ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _FontStyles:
    """The document's body size and heading sizes, so a level means the same on every page."""

    body: float
    levels: dict[float, int]  # heading font size -> level

    @classmethod
    def of(cls, pages: list[Page]) -> _FontStyles:
        weights: Counter[float] = Counter()
        lines = [line for page in pages if not page.ocr for block in page.blocks for line in block.lines]
        for line in lines:
            weights[line.size] += len(line.text)
        body = weights.most_common(1)[0][0] if weights else 0.0
        sizes = sorted({line.size for line in lines if line.size >= body * _HEADING_SIZE_RATIO}, reverse=True)
        levels: dict[float, int] = {}
        level, previous = 0, None
        for size in sizes:  # a size within half a point of the next larger one shares its level
            if previous is None or previous - size > 0.5:
                level = min(level + 1, _MAX_LEVEL)
            levels[size], previous = level, size
        return cls(body, levels)

    def level(self, line: Line) -> int:
        """0 for body text; 1 for the largest heading size; bold body-size lines are the lowest level."""
        text = line.text
        if line.size in self.levels:
            level = self.levels[line.size]
        elif line.bold and line.size >= self.body - 0.5 and len(text.split()) <= 12 and not text.endswith(":"):
            level = min(max(self.levels.values(), default=0) + 1, _MAX_LEVEL)
        else:
            return 0  # most lines: decided without looking at their letters
        if len(text) > 200 or text.endswith((".", ",", ";")) or sum(char.isalpha() for char in text) < 2:
            return 0
        return level


def _pdf_elements(page: Page, styles: _FontStyles) -> list[Element]:
    flow = _Flow(page)
    area = (page.width or 0) * (page.height or 0)
    has_text = bool(page.text.strip())
    caption: Line | None = None  # the first line of the next block, taken by the figure before it
    for index, block in enumerate(page.blocks):
        assert block.bbox is not None  # a PDF's blocks are all laid out (only DOCX has none)
        if block.kind == "image":
            x0, y0, x1, y1 = block.bbox
            small = min(x1 - x0, y1 - y0) < _MIN_FIGURE_POINTS
            if small or (has_text and (x1 - x0) * (y1 - y0) >= area * _BACKGROUND_SHARE):
                continue
            caption = _caption_below(block.bbox, page.blocks[index + 1 : index + 2], styles)
            flow.close()
            flow.emit("figure", caption.text if caption else "", [block.bbox])
        elif block.kind == "table":
            flow.close()
            flow.emit("table", markdown_table(block.rows), [block.bbox], _table_metadata(block.rows))
        else:
            lines = block.lines[1:] if caption is not None and block.lines[0] is caption else block.lines
            caption = None
            _pdf_lines(flow, lines, styles)
            if flow.kind != "list":  # MuPDF's blocks end paragraphs; a list may go on in the next block
                flow.close()
    flow.close()
    return flow.elements


def _pdf_lines(flow: _Flow, lines: tuple[Line, ...], styles: _FontStyles) -> None:
    previous: Box | None = None  # the previous line's box
    item_x0 = flow.boxes[-1][0] if flow.kind == "list" and flow.boxes else 0.0  # where the open item starts
    for line in lines:
        box = line.bbox
        assert box is not None  # a PDF's lines are all laid out (only DOCX has none)
        gap = box[1] - previous[3] if previous else 0.0
        close_below = previous is not None and gap <= 0.5 * (previous[3] - previous[1])
        level = styles.level(line)
        if level:
            if flow.kind == "heading" and flow.level == level and close_below:
                flow.extend(line.text, box)
            else:
                flow.open("heading", line.text, box, level)
        elif bullet := _BULLET.match(line.text):
            if flow.kind == "list":
                flow.add_item(_list_item(bullet), box)
            else:
                flow.open("list", _list_item(bullet), box)
            item_x0 = box[0]
        elif flow.kind == "list" and close_below and box[0] > item_x0 + 1:
            flow.extend(line.text, box, _wrap(flow.parts[-1]))  # an item's wrapped rest, under its text
        elif (pair := _key_value(line.text)) and not (
            flow.kind == "paragraph" and close_below and not flow.parts[-1].endswith((".", ":", "!", "?"))
        ):
            flow.key_value(pair, box)
        elif flow.kind == "paragraph" and close_below:
            flow.extend(line.text, box, _wrap(flow.parts[-1]))
        else:
            flow.open("paragraph", line.text, box)
        previous = box


def _wrap(text: str) -> str:
    """A line that ends in a hyphen goes on without a space ("well-" + "known"); others with one."""
    return "" if text.endswith("-") else " "


def _caption_below(figure: Box, following: tuple[Block, ...], styles: _FontStyles) -> Line | None:
    """The first line of the next block, when it sits just below the image and reads like a caption."""
    if not following or following[0].kind != "text":
        return None
    line = following[0].lines[0]
    assert line.bbox is not None  # a PDF's lines are all laid out
    x0, _, x1, y1 = figure
    below = 0 <= line.bbox[1] - y1 <= 2 * max(styles.body, line.size) and line.bbox[0] < x1 and line.bbox[2] > x0
    looks_like = _CAPTION.match(line.text) is not None or line.size < styles.body
    return line if below and looks_like and len(line.text) <= 200 else None


# --- DOCX --------------------------------------------------------------------------------------------------


def _docx_elements(blocks: tuple[Block, ...]) -> list[Element]:
    flow = _Flow()
    for block in blocks:
        if block.kind == "table":
            flow.close()
            flow.emit("table", markdown_table(block.rows), [], _table_metadata(block.rows))
            continue
        text = block.lines[0].text
        if block.heading_level:
            flow.open("heading", " ".join(text.split()), level=block.heading_level)
        elif block.list_item:
            if flow.kind == "list":
                flow.add_item(text)
            else:
                flow.open("list", text)
        elif "\n" not in text and (pair := _key_value(text)):
            flow.key_value(pair)
        else:
            flow.open("paragraph", text)
    flow.close()
    return flow.elements


# --- TXT and MD --------------------------------------------------------------------------------------------


def _text_elements(text: str) -> list[Element]:
    """Markdown block syntax: ATX and setext headings, lists, pipe tables, fenced code, "Key: value" lines."""
    flow = _Flow()
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        index += 1
        if not stripped:
            flow.close()
        elif stripped.startswith(("```", "~~~")):
            fence, code = stripped[:3], []
            while index < len(lines) and not lines[index].strip().startswith(fence):
                code.append(lines[index])
                index += 1
            index += 1
            flow.open("paragraph", "\n".join(code))
            flow.close()
        elif heading := _MD_HEADING.match(stripped):
            flow.open("heading", heading[2], level=len(heading[1]))
            flow.close()
        elif flow.kind != "paragraph" and following and set(following) in ({"="}, {"-"}):
            flow.open("heading", stripped, level=1 if following[0] == "=" else 2)
            flow.close()
            index += 1
        elif _MD_THEMATIC_BREAK.match(stripped):
            flow.close()
        elif stripped.startswith("|") and _MD_TABLE_RULE.match(following):
            rows = [_md_cells(stripped)]
            index += 1
            while index < len(lines) and lines[index].strip().startswith("|"):
                rows.append(_md_cells(lines[index].strip()))
                index += 1
            flow.close()
            flow.emit("table", markdown_table(rows), [], _table_metadata(rows))
        elif bullet := _MD_BULLET.match(line):
            if flow.kind == "list":
                flow.add_item(_list_item(bullet))
            else:
                flow.open("list", _list_item(bullet))
        elif flow.kind == "list" and line[:1].isspace():
            flow.extend(stripped)
        elif flow.kind != "paragraph" and (pair := _key_value(stripped)):
            flow.key_value(pair)
        elif flow.kind == "paragraph":
            flow.extend(stripped, separator="\n")
        else:
            flow.open("paragraph", stripped)
    flow.close()
    return flow.elements


def _md_cells(row: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", row.strip().strip("|"))
    return [cell.strip().replace("\\|", "|") for cell in cells]
