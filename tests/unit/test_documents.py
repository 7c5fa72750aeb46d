"""Document text, digitization and chunks on real files made here: PDFs drawn with pymupdf, a DOCX written
with python-docx, UTF-8 and UTF-16 text, Markdown."""

from __future__ import annotations

import io
import time
import zipfile
from functools import cache

import pymupdf
import pytest

from pipelines.document.chunking import chunk
from pipelines.document.digitize import NEEDS_OCR, BoundingBox, Digitization, digitize
from pipelines.document.extraction import DocumentError, Limits, extract
from tests.support.sample_documents import (
    FINDINGS,
    IMAGE_RECT,
    SENTENCE,
    TABLE_RECT,
    deeply_nested_docx,
    make_docx,
    manual_pdf,
    many_paragraphs_docx,
    minimal_docx,
)


def words(text: str) -> int:
    return len(text.split())


@cache
def manual() -> Digitization:
    return digitize(extract(manual_pdf(), "pdf"))


# --- PDF ---------------------------------------------------------------------------------------------------


def test_pdf_text_pages_language_and_scanned_page() -> None:
    document = extract(io.BytesIO(manual_pdf()), "pdf")

    assert document.page_count == 3
    assert [page.number for page in document.pages] == [1, 2, 3]
    assert (document.pages[0].width, document.pages[0].height) == (595, 842)
    assert document.pages[0].text.startswith("Safety Manual\n")
    assert "Fire | Quarterly | Safety team" in document.pages[1].text
    assert document.text.index("Site: North Yard") < document.text.index("Chapter 2: Schedules")
    assert "\n\nChapter 2: Schedules" in document.text  # pages are separated by a blank line
    assert document.language == "en"
    assert document.needs_ocr_pages == [3]


def test_pdf_elements_in_reading_order_with_heading_levels() -> None:
    first, second, _ = manual().pages

    assert [(element.type, (element.metadata or {}).get("level")) for element in first.elements] == [
        ("heading", 1),
        ("paragraph", None),
        ("heading", 2),
        ("paragraph", None),
        ("heading", 3),
        ("list", None),
        ("key_value", None),
        ("key_value", None),
        ("key_value", None),
    ]
    assert first.elements[1].content == ((SENTENCE + FINDINGS) * 2).strip()
    assert first.elements[5].content == "Check the fire extinguishers\nTest the emergency lights\nInspect scaffolding"
    assert first.elements[6].content == "Inspector: Jane Doe"
    assert first.elements[7].metadata == {"key": "Date", "value": "2026-01-15"}
    assert [element.type for element in second.elements] == ["heading", "table", "paragraph", "figure"]
    assert second.elements[1].content == (
        "| Category | Frequency | Owner |\n|---|---|---|\n| Fire | Quarterly | Safety team |\n"
        "| Electrical | Yearly | Contractor |"
    )
    assert second.elements[3].content == "Figure 1: Site map"  # the caption belongs to the figure, not the flow


def test_pdf_bounding_boxes_are_normalised_and_placed() -> None:
    first, second, _ = manual().pages
    for element in first.elements + second.elements:
        box = element.bounding_box
        assert box.x >= 0 and box.y >= 0 and box.w > 0 and box.h > 0
        assert box.x + box.w <= 1 and box.y + box.h <= 1
    for heading, paragraph in [(first.elements[0], first.elements[1]), (first.elements[2], first.elements[3])]:
        assert heading.bounding_box.y + heading.bounding_box.h <= paragraph.bounding_box.y + 0.005

    def covers(box: BoundingBox, rect: pymupdf.Rect, slack: float = 0.005) -> bool:
        return (
            box.x <= rect.x0 / 595 + slack
            and box.y <= rect.y0 / 842 + slack
            and box.x + box.w >= rect.x1 / 595 - slack
            and box.y + box.h >= rect.y1 / 842 - slack
        )

    table, figure = second.elements[1].bounding_box, second.elements[3].bounding_box
    assert covers(table, TABLE_RECT) and table.w < TABLE_RECT.width / 595 + 0.01
    assert covers(figure, IMAGE_RECT) and figure.h < IMAGE_RECT.height / 842 + 0.01


def test_scanned_page_is_flagged_for_ocr_and_counts_add_up() -> None:
    shape = manual().to_dict()

    assert shape["pages"][2] == {
        "page_number": 3,
        "status": NEEDS_OCR,
        "element_count": 0,
        "elements": [],
        "error_message": None,
    }
    assert (shape["status"], shape["total_pages"], shape["completed_pages"], shape["failed_pages"]) == (
        "completed",
        3,
        2,
        0,
    )
    heading = shape["pages"][0]["elements"][0]
    assert heading["type"] == "heading" and heading["metadata"] == {"level": 1}
    assert set(heading["bounding_box"]) == {"x", "y", "w", "h"}
    assert "metadata" not in shape["pages"][0]["elements"][1]  # a paragraph has none, as in the spec


@pytest.mark.parametrize("cut", [b"", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage", "truncated"])
def test_corrupt_pdf_is_refused(cut: bytes | str) -> None:
    data = manual_pdf()[:400] if cut == "truncated" else cut
    with pytest.raises(DocumentError, match="The PDF is corrupt"):
        extract(data, "pdf")


def test_password_protected_pdf_is_refused() -> None:
    document = pymupdf.open(stream=manual_pdf(), filetype="pdf")
    encrypted = document.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner")

    with pytest.raises(DocumentError, match="password-protected"):
        extract(encrypted, "pdf")


def test_limits_bound_the_work() -> None:
    with pytest.raises(DocumentError, match="3 pages; at most 2"):
        extract(manual_pdf(), "pdf", Limits(max_pages=2))
    with pytest.raises(DocumentError, match="more than 100 characters"):
        extract(manual_pdf(), "pdf", Limits(max_chars=100))


# --- DOCX, TXT, MD -----------------------------------------------------------------------------------------


def test_docx_styles_become_elements_and_page_breaks_pages() -> None:
    document = extract(make_docx(), "docx")
    digitization = digitize(document)
    first = digitization.pages[0]

    assert document.page_count == 2 and document.language == "en"
    assert document.text.startswith("Site Report\nSafety inspections")
    assert [(element.type, element.content.split("\n")[0]) for element in first.elements] == [
        ("heading", "Site Report"),
        ("paragraph", (SENTENCE + FINDINGS).strip()),
        ("heading", "Findings"),
        ("list", "Cracked pillar"),
        ("key_value", "Inspector: Jane Doe"),
        ("table", "| Area | Status |"),
    ]
    assert [element.metadata["level"] for element in first.elements if element.type == "heading"] == [1, 2]
    assert first.elements[3].content == "Cracked pillar\nLoose railing"
    assert all(element.bounding_box is None for element in first.elements)
    assert digitization.pages[1].elements[0].content.startswith("The second page")


def test_docx_of_many_elements_is_refused_before_it_is_walked() -> None:
    bomb = many_paragraphs_docx(300_000)
    assert len(bomb) < 4096

    started = time.perf_counter()
    with pytest.raises(DocumentError, match="more than 200,000 XML elements"):
        extract(bomb, "docx")
    assert time.perf_counter() - started < 10  # it held a worker for most of a minute when walked


def test_docx_nesting_and_element_bounds_come_from_the_limits() -> None:
    with pytest.raises(DocumentError, match="nests XML elements more than 100 deep"):
        extract(deeply_nested_docx(60), "docx")
    assert extract(deeply_nested_docx(60), "docx", Limits(max_xml_depth=200)).page_count == 1
    paragraphs = minimal_docx("<w:p><w:r><w:t>Inspection</w:t></w:r></w:p>" * 50)
    assert "Inspection" in extract(paragraphs, "docx").text
    with pytest.raises(DocumentError, match="more than 100 XML elements"):
        extract(paragraphs, "docx", Limits(max_xml_elements=100))


def test_corrupt_docx_is_refused() -> None:
    with pytest.raises(DocumentError, match="not a valid ZIP"):
        extract(b"PK\x03\x04 not really a zip", "docx")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("hello.txt", "not a document")
    with pytest.raises(DocumentError, match="corrupt or not a Word document"):
        extract(buffer.getvalue(), "docx")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_text_encodings(encoding: str) -> None:
    text = "Prüfbericht\n\nDie Prüfung der Anlage wurde am Montag durchgeführt und ist abgeschlossen.\n"
    document = extract(text.encode(encoding), "txt")

    assert document.text == text.strip("\n")
    assert (document.page_count, document.language) == (1, "de")
    assert [element.type for element in digitize(document).pages[0].elements] == ["paragraph", "paragraph"]


def test_text_that_is_not_utf_is_refused_and_form_feeds_split_pages() -> None:
    with pytest.raises(DocumentError, match="neither UTF-8 nor UTF-16"):
        extract("Prüfbericht".encode("latin-1"), "txt")
    assert [page.text for page in extract(b"one\n\x0ctwo\n", "txt").pages] == ["one", "two"]


def test_markdown_structure() -> None:
    markdown = (
        "# Inspection\n\nIntro paragraph\nwrapped here.\n\n## Findings\n\n- north pillar: cracks\n- south pillar\n"
        "  still fine\n\n| Area | Status |\n|---|:---:|\n| North | Closed |\n\nOwner: Facilities\n\n"
        "```\n# not a heading\n```\n\nTitle\n=====\n"
    )
    elements = digitize(extract(markdown.encode(), "md")).pages[0].elements

    assert [(element.type, element.content) for element in elements] == [
        ("heading", "Inspection"),
        ("paragraph", "Intro paragraph\nwrapped here."),
        ("heading", "Findings"),
        ("list", "north pillar: cracks\nsouth pillar still fine"),
        ("table", "| Area | Status |\n|---|---|\n| North | Closed |"),
        ("key_value", "Owner: Facilities"),
        ("paragraph", "# not a heading"),
        ("heading", "Title"),
    ]
    assert [element.metadata["level"] for element in elements if element.type == "heading"] == [1, 2, 1]


# --- chunks ------------------------------------------------------------------------------------------------


def test_chunks_start_at_headings_and_carry_the_hierarchy() -> None:
    chunks = chunk(manual(), words)

    assert [(item.heading_hierarchy, item.chunk_type, item.page_numbers) for item in chunks] == [
        (["Safety Manual"], "paragraph", [1]),
        (["Safety Manual", "Chapter 1: Inspections"], "paragraph", [1]),
        (["Safety Manual", "Chapter 1: Inspections", "1.1 Checklist"], "mixed", [1]),
        (["Safety Manual", "Chapter 2: Schedules"], "mixed", [2]),
    ]
    assert [item.chunk_index for item in chunks] == [0, 1, 2, 3]
    assert chunks[3].content.startswith("| Category | Frequency | Owner |")  # the table is whole
    assert chunks[3].content.endswith("Figure 1: Site map")
    assert all(item.token_count == words(item.content) for item in chunks)


def test_oversize_elements_split_at_their_seams_within_the_limit() -> None:
    chunks = chunk(manual(), words, max_tokens=20, overlap_tokens=12)

    assert all(item.token_count <= 20 for item in chunks)
    first_section = [item.content for item in chunks if item.heading_hierarchy == ["Safety Manual"]]
    assert first_section == [SENTENCE.strip(), FINDINGS.strip()] * 2  # no overlap: no sentence fits in the room
    tables = [item.content for item in chunks if item.chunk_type == "table"]
    assert len(tables) == 2 and all(table.startswith("| Category | Frequency | Owner |\n|---|") for table in tables)


def test_sentence_overlap_and_word_cuts() -> None:
    sentences = [f"Sentence {index} has exactly six words." for index in range(6)]
    digitization = digitize(extract(" ".join(sentences).encode(), "txt"))
    chunks = chunk(digitization, words, max_tokens=15, overlap_tokens=6)

    assert [item.content for item in chunks] == [
        " ".join(sentences[0:2]),
        " ".join(sentences[1:3]),
        " ".join(sentences[2:4]),
        " ".join(sentences[3:5]),
        " ".join(sentences[4:6]),
    ]
    long = digitize(extract(("word " * 50).encode(), "txt"))
    assert [item.token_count for item in chunk(long, words, max_tokens=16, overlap_tokens=0)] == [16, 16, 16, 2]


def test_chunk_spanning_a_page_break_lists_both_pages() -> None:
    chunks = chunk(digitize(extract(make_docx(), "docx")), words, max_tokens=200)

    assert chunks[-1].heading_hierarchy == ["Site Report", "Findings"]
    assert chunks[-1].page_numbers == [1, 2]
    assert chunks[-1].chunk_type == "mixed"
