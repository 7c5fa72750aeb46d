"""Documents made in the tests with the real libraries: a structured PDF drawn with pymupdf, a scanned page (text
drawn by Pillow into an image, no text layer) and a DOCX written with python-docx (shared by the unit tests of
document processing and the integration tests of the document routes)."""

from __future__ import annotations

import io
import zipfile
from functools import cache

import docx
import pymupdf
from PIL import Image, ImageDraw, ImageFont

SENTENCE = "Safety inspections must be conducted quarterly by a certified inspector. "
FINDINGS = "Every finding is recorded in the log and reviewed by the site manager within two weeks. "
TABLE_RECT = pymupdf.Rect(72, 100, 522, 166)
IMAGE_RECT = pymupdf.Rect(72, 260, 272, 400)


@cache
def manual_pdf() -> bytes:
    """Three A4 pages: headings of three sizes, paragraphs, a bulleted list and "Key: value" lines; a ruled
    table, a paragraph and a captioned image; then a scanned page (an image and no text)."""
    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((72, 72), "Safety Manual", fontsize=24, fontname="hebo")
    page.insert_textbox(pymupdf.Rect(72, 90, 523, 170), (SENTENCE + FINDINGS) * 2, fontsize=11)
    page.insert_text((72, 190), "Chapter 1: Inspections", fontsize=18, fontname="hebo")
    page.insert_textbox(pymupdf.Rect(72, 205, 523, 255), SENTENCE + FINDINGS, fontsize=11)
    page.insert_text((72, 265), "1.1 Checklist", fontsize=14, fontname="hebo")
    for index, item in enumerate(["Check the fire extinguishers", "Test the emergency lights", "Inspect scaffolding"]):
        page.insert_text((80, 290 + 16 * index), f"\u2022 {item}", fontsize=11)
    for index, (key, value) in enumerate([("Inspector", "Jane Doe"), ("Date", "2026-01-15"), ("Site", "North Yard")]):
        page.insert_text((72, 350 + 16 * index), f"{key}: {value}", fontsize=11)

    page = document.new_page()
    page.insert_text((72, 72), "Chapter 2: Schedules", fontsize=18, fontname="hebo")
    rows = [
        ["Category", "Frequency", "Owner"],
        ["Fire", "Quarterly", "Safety team"],
        ["Electrical", "Yearly", "Contractor"],
    ]
    width, height = TABLE_RECT.width / 3, TABLE_RECT.height / 3
    for row_index, row in enumerate(rows):
        for column, cell in enumerate(row):
            origin = (TABLE_RECT.x0 + column * width + 4, TABLE_RECT.y0 + row_index * height + 15)
            page.insert_text(origin, cell, fontsize=11, fontname="hebo" if row_index == 0 else "helv")
    for index in range(4):
        y = TABLE_RECT.y0 + index * height
        page.draw_line((TABLE_RECT.x0, y), (TABLE_RECT.x1, y))
        x = TABLE_RECT.x0 + index * width
        page.draw_line((x, TABLE_RECT.y0), (x, TABLE_RECT.y1))
    page.insert_textbox(pymupdf.Rect(72, 190, 523, 240), SENTENCE + FINDINGS, fontsize=11)
    page.insert_image(IMAGE_RECT, pixmap=_gray_pixmap())
    page.insert_text((72, 415), "Figure 1: Site map", fontsize=9)

    page = document.new_page()
    page.insert_image(page.rect, pixmap=_gray_pixmap())
    return document.tobytes()


SCANNED_LINES = (
    "Quarterly boiler inspection report",
    "The pressure valve was replaced on site.",
    "Inspector: Marta Kowalski",
)


def scanned_page_image(lines: tuple[str, ...] = SCANNED_LINES) -> bytes:
    """A page as a scanner sees it: black text on white, 150 pixels per inch of an A4 page (PNG)."""
    image = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)
    for index, line in enumerate(lines):
        draw.text((150, 200 + 90 * index), line, fill=0, font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@cache
def scanned_pdf(with_text_page: bool = False) -> bytes:
    """One scanned A4 page (only an image: no text layer), after a page with a text layer if asked."""
    document = pymupdf.open()
    if with_text_page:
        page = document.new_page()
        page.insert_text((72, 72), "Plant Overview", fontsize=18, fontname="hebo")
        page.insert_textbox(pymupdf.Rect(72, 90, 523, 170), SENTENCE + FINDINGS, fontsize=11)
    page = document.new_page()
    page.insert_image(page.rect, stream=scanned_page_image())
    return document.tobytes()


def _gray_pixmap() -> pymupdf.Pixmap:
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 64, 64), False)
    pixmap.clear_with(180)
    return pixmap


def make_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Site Report", level=1)
    document.add_paragraph(SENTENCE + FINDINGS)
    document.add_heading("Findings", level=2)
    for item in ("Cracked pillar", "Loose railing"):
        document.add_paragraph(item, style="List Bullet")
    document.add_paragraph("Inspector: Jane Doe")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("Area", "Status"), ("North", "Closed")], strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    document.add_page_break()
    document.add_paragraph("The second page continues the findings. " + FINDINGS)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELATIONSHIPS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="word/document.xml" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/></Relationships>'
)


def minimal_docx(body: str) -> bytes:
    """The smallest DOCX Word opens: its main part holds `body` (WordprocessingML, `w:` prefixed), deflated hard."""
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{body}</w:body></w:document>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as package:
        package.writestr("[Content_Types].xml", _CONTENT_TYPES)
        package.writestr("_rels/.rels", _RELATIONSHIPS)
        package.writestr("word/document.xml", document)
    return buffer.getvalue()


def many_paragraphs_docx(count: int = 300_000) -> bytes:
    """A few KB of DOCX that expands to `count` empty paragraphs."""
    return minimal_docx("<w:p/>" * count)


def deeply_nested_docx(depth: int = 60) -> bytes:
    """A paragraph inside `depth` nested content controls (two elements each)."""
    return minimal_docx("<w:sdt><w:sdtContent>" * depth + "<w:p/>" + "</w:sdtContent></w:sdt>" * depth)
