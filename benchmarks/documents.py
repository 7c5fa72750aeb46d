"""Pages per second and heading recall of our document pipeline (`extract` + `digitize` + `chunk`, whitespace
token counter) against pymupdf4llm's `to_markdown`, the structure-aware Markdown on the same MuPDF that users
reach for, on a generated 200-page report and on real PDFs that carry an outline (the manuals Debian ships in
`libtasn1-doc` and `shared-mime-info`; an input that is not installed is skipped, with the reason in the JSON).

pymupdf4llm runs as installed: with pymupdf-layout (its ONNX layout model, what `pip install pymupdf4llm` brings)
and, as `pymupdf4llm_legacy`, on its older heuristic path (`use_layout(False)`), the faster of the two. Heading
recall is the share of the PDF's own outline (`get_toc()`) found among our heading elements and among
pymupdf4llm's Markdown `#` headings; titles are compared without case, spacing or a leading section number
("2.1", "Appendix A"), which outlines often drop. A bare `page.get_text()` loop, a `get_text("dict")` loop (the
one MuPDF pass we build on: the floor of any structured extraction with pymupdf) and pdfminer.six's
`extract_text` are shown as context: they find no structure. Each contender first runs once untimed (imports,
models; pymupdf4llm on one page); then the runs are interleaved (a busy machine slows all alike) and the
medians reported; the slow ones (pymupdf4llm, pdfminer) run fewer times.

    .venv/bin/python benchmarks/documents.py [--pages 200] [--runs 5] [--slow-runs 1]

pymupdf4llm and pdfminer.six are optional (the `bench` extra); without them their figures are null. Debian's
PDFs: `apt-get install libtasn1-doc shared-mime-info`. The last line of output is one JSON object with the
figures per input.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pymupdf

from pipelines.document.chunking import chunk
from pipelines.document.digitize import Digitization, digitize
from pipelines.document.extraction import extract

try:
    import pymupdf4llm
except ImportError:
    pymupdf4llm = None
try:
    from pdfminer.high_level import extract_text as pdfminer_text
except ImportError:
    pdfminer_text = None

# name -> (path, Debian package that ships it)
DEBIAN_PDFS = {
    "libtasn1": (Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf"), "libtasn1-doc"),
    "shared-mime-info": (Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"), "shared-mime-info"),
}
_SECTION_NUMBER = re.compile(r"^(?:(?:chapter|appendix|section|part)\s+)?(?:\d+|[a-z])(?:\.\d+)*\.?\s+")
_MD_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
_MD_EMPHASIS = re.compile(r"\*+|`+|(?<!\w)_+|_+(?!\w)")

PARAGRAPH = (
    "Inspections of the {n} site follow the quarterly schedule agreed with the facilities team. Every finding "
    "is recorded in the log with its location, its severity and a photo, and the site manager reviews the log "
    "within two weeks. Repairs that affect the structure are signed off by a certified engineer before the "
    "area is opened again, and the sign-off is attached to the finding. "
)


def report(pages: int) -> bytes:
    """A report-like PDF: on every page a heading (in the outline too) and paragraphs; a bulleted list on every
    second page, "Key: value" lines on every third, a ruled table on every fourth, an image on every tenth."""
    document = pymupdf.open()
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 64, 64), False)
    pixmap.clear_with(160)
    for number in range(1, pages + 1):
        page = document.new_page()
        page.insert_text((72, 72), f"Section {number}: Site inspection", fontsize=18, fontname="hebo")
        y = 90.0
        for index in range(3):
            page.insert_textbox(pymupdf.Rect(72, y, 523, y + 80), PARAGRAPH.format(n=f"{number}.{index}"), fontsize=10)
            y += 80
        if number % 2 == 0:
            for item in ("Check the extinguishers", "Test the emergency lights", "Inspect the scaffolding"):
                page.insert_text((80, y), f"\u2022 {item}", fontsize=10)
                y += 14
            y += 10
        if number % 3 == 0:
            for key, value in (("Inspector", "Jane Doe"), ("Date", "2026-01-15"), ("Site", f"Yard {number}")):
                page.insert_text((72, y), f"{key}: {value}", fontsize=10)
                y += 14
            y += 10
        if number % 4 == 0:
            y = _table(page, y, number)
        if number % 10 == 0:
            page.insert_image(pymupdf.Rect(72, y, 272, y + 120), pixmap=pixmap)
            page.insert_text((72, y + 134), f"Figure {number}: Site map", fontsize=8)
    document.set_toc([[1, f"Section {number}: Site inspection", number] for number in range(1, pages + 1)])
    return document.tobytes()


def _table(page: pymupdf.Page, top: float, number: int) -> float:
    rows = [("Area", "Status", "Owner")] + [(f"Zone {number}-{row}", "Open", "Facilities") for row in range(4)]
    height = 18
    for index, row in enumerate(rows):
        for column, cell in enumerate(row):
            page.insert_text((76 + column * 150, top + index * height + 13), cell, fontsize=10)
    for index in range(len(rows) + 1):
        page.draw_line((72, top + index * height), (522, top + index * height))
    for column in range(4):
        page.draw_line((72 + column * 150, top), (72 + column * 150, top + len(rows) * height))
    return top + len(rows) * height + 16


def inputs(pages: int) -> dict[str, bytes | str]:
    """Each input's bytes, or why it is skipped."""
    found: dict[str, bytes | str] = {"report": report(pages)}
    for name, (path, package) in DEBIAN_PDFS.items():
        found[name] = path.read_bytes() if path.is_file() else f"{path} not found: apt-get install {package}"
    return found


def ours(data: bytes) -> Digitization:
    digitization = digitize(extract(data, "pdf"))
    chunk(digitization, lambda text: len(text.split()))
    return digitization


def markdown(data: bytes, layout: bool, pages: list[int] | None = None) -> str:
    """pymupdf4llm's Markdown, with or without its layout model (which reports its OCR engine on each call)."""
    pymupdf4llm.use_layout(layout)
    with pymupdf.open(stream=data, filetype="pdf") as document:
        return pymupdf4llm.to_markdown(document, pages=pages, show_progress=False)


def pymupdf_text(data: bytes, mode: str = "text") -> int:
    with pymupdf.open(stream=data, filetype="pdf") as document:
        return sum(len(page.get_text(mode)) for page in document)


def median_seconds(contenders: dict[str, Callable[[], object]], runs: dict[str, int]) -> tuple[dict, dict]:
    """Each contender's median seconds over its runs, interleaved with the others' (a slow one runs in the first
    rounds only), and what it returned."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    returned = {}
    for round_ in range(max(runs.values())):
        for name, work in contenders.items():
            if round_ < runs[name]:
                start = time.perf_counter()
                returned[name] = work()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}, returned


def title(text: str) -> str:
    """A heading or outline title as compared: lower case, single spaces, no leading section number."""
    return _SECTION_NUMBER.sub("", " ".join(text.lower().split()), count=1)


def recall(outline: list[str], headings: set[str]) -> float | None:
    """The share of the outline's titles among the headings (None without an outline)."""
    return round(sum(entry in headings for entry in outline) / len(outline), 3) if outline else None


def headings(output: Digitization | str) -> set[str]:
    """The titles of our heading elements, or of the `#` headings in pymupdf4llm's Markdown."""
    if isinstance(output, str):
        return {title(_MD_EMPHASIS.sub("", text)) for text in _MD_HEADING.findall(output)}
    return {title(element.content) for page in output.pages for element in page.elements if element.type == "heading"}


def measure(data: bytes, fast_runs: int, slow_runs: int) -> dict[str, object]:
    """One input's pages/s per contender, and heading recall for ours and pymupdf4llm's."""
    with pymupdf.open(stream=data, filetype="pdf") as document:
        pages = document.page_count
        outline = [title(entry[1]) for entry in document.get_toc()]
    contenders: dict[str, Callable[[], object]] = {
        "ours": lambda: ours(data),
        "pymupdf": lambda: pymupdf_text(data),
        "pymupdf_dict": lambda: pymupdf_text(data, "dict"),
    }
    for work in contenders.values():
        work()  # untimed: imports, caches, the language model
    runs = dict.fromkeys(contenders, fast_runs)
    if pymupdf4llm is not None:
        modes = {"pymupdf4llm_legacy": False}
        if importlib.util.find_spec("pymupdf.layout") is not None:
            modes = {"pymupdf4llm": True} | modes
        for name, layout in modes.items():
            markdown(data, layout, pages=[0])  # untimed: the layout and OCR models
            contenders[name], runs[name] = (lambda layout=layout: markdown(data, layout)), slow_runs
    if pdfminer_text is not None:
        contenders["pdfminer"], runs["pdfminer"] = (lambda: pdfminer_text(io.BytesIO(data))), slow_runs
    seconds, returned = median_seconds(contenders, runs)
    rate = {name: pages / value for name, value in seconds.items()}
    figures: dict[str, object] = {"pages": pages, "outline_titles": len(outline)}
    for name in ("ours", "pymupdf4llm", "pymupdf4llm_legacy", "pymupdf", "pymupdf_dict", "pdfminer"):
        figures[f"{name}_pages_s"] = round(rate[name], 1) if name in rate else None
    for name in ("ours", "pymupdf4llm", "pymupdf4llm_legacy"):
        output = returned.get(name)
        figures[f"{name}_heading_recall"] = None if output is None else recall(outline, headings(output))
    for name in ("pymupdf4llm", "pymupdf4llm_legacy", "pymupdf", "pymupdf_dict", "pdfminer"):
        figures[f"ratio_vs_{name}"] = round(rate["ours"] / rate[name], 2) if name in rate else None
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=200, help="pages of the generated report")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--slow-runs", type=int, default=1, help="runs of pymupdf4llm and pdfminer.six")
    args = parser.parse_args()

    sources = inputs(args.pages)
    kinds = sorted({element.type for page in ours(sources["report"]).pages for element in page.elements})
    assert kinds == ["figure", "heading", "key_value", "list", "paragraph", "table"], kinds
    for name, missing in (("pymupdf4llm", pymupdf4llm), ("pdfminer.six", pdfminer_text)):
        if missing is None:
            print(f"{name} is not installed (pip install 'scopix[bench]'); its figures are null")

    results: dict[str, object] = {}
    for name, data in sources.items():
        if isinstance(data, str):
            print(f"{name}: skipped, {data}")
            results[name] = {"skipped": data}
            continue
        figures = results[name] = measure(data, args.runs, args.slow_runs)
        print(f"{name} ({figures['pages']} pages, {figures['outline_titles']} outline titles), median of runs:")
        for contender in ("ours", "pymupdf4llm", "pymupdf4llm_legacy", "pymupdf", "pymupdf_dict", "pdfminer"):
            pages_s, found = figures[f"{contender}_pages_s"], figures.get(f"{contender}_heading_recall")
            if pages_s is not None:
                print(f"  {contender:20} {pages_s:8.1f} pages/s" + ("" if found is None else f"  recall {found:.3f}"))
    version = None if pymupdf4llm is None else pymupdf4llm.version
    print(json.dumps({"inputs": results, "pymupdf_version": pymupdf.VersionBind, "pymupdf4llm_version": version}))


if __name__ == "__main__":
    main()
