"""Pages per second of our document pipeline (`extract` + `digitize` + `chunk`, whitespace token counter) on a
generated 200-page report, against a bare pymupdf `page.get_text()` loop and pdfminer.six's `extract_text`,
on the same bytes in one run. A `get_text("dict")` loop is shown too: the one MuPDF pass we build on (font sizes
and weights, tables), so the floor of any structured extraction with pymupdf. Each contender first runs once
untimed (imports, the language model); then the runs are interleaved (a busy machine slows all alike) and the
medians reported; pdfminer, ~30× slower, runs fewer times.

    .venv/bin/python benchmarks/documents.py [--pages 200] [--runs 5] [--pdfminer-runs 1]

pdfminer.six is optional (the `bench` extra); without it its figures are null. The last line of output is one
JSON object with the figures.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable

import pymupdf

from pipelines.document.chunking import chunk
from pipelines.document.digitize import digitize
from pipelines.document.extraction import extract

PARAGRAPH = (
    "Inspections of the {n} site follow the quarterly schedule agreed with the facilities team. Every finding "
    "is recorded in the log with its location, its severity and a photo, and the site manager reviews the log "
    "within two weeks. Repairs that affect the structure are signed off by a certified engineer before the "
    "area is opened again, and the sign-off is attached to the finding. "
)


def report(pages: int) -> bytes:
    """A report-like PDF: on every page a heading and paragraphs; a bulleted list on every second page,
    "Key: value" lines on every third, a ruled table on every fourth, an image on every tenth."""
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


def ours(data: bytes) -> int:
    document = extract(data, "pdf")
    return len(chunk(digitize(document), lambda text: len(text.split())))


def pymupdf_text(data: bytes, mode: str = "text") -> int:
    with pymupdf.open(stream=data, filetype="pdf") as document:
        return sum(len(page.get_text(mode)) for page in document)


def median_seconds(contenders: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    for work in contenders.values():
        work()  # untimed: imports, caches, the language model
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, work in contenders.items():
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pdfminer-runs", type=int, default=1)
    args = parser.parse_args()

    data = report(args.pages)
    digitization = digitize(extract(data, "pdf"))
    kinds = sorted({element.type for page in digitization.pages for element in page.elements})
    assert kinds == ["figure", "heading", "key_value", "list", "paragraph", "table"], kinds

    seconds = median_seconds(
        {
            "ours": lambda: ours(data),
            "pymupdf": lambda: pymupdf_text(data),
            "pymupdf_dict": lambda: pymupdf_text(data, "dict"),
        },
        args.runs,
    )
    try:
        from pdfminer.high_level import extract_text

        seconds |= median_seconds({"pdfminer": lambda: extract_text(io.BytesIO(data))}, args.pdfminer_runs)
    except ImportError:
        print("pdfminer.six is not installed (pip install 'scopix[bench]'); reporting pymupdf only")
    rate = {name: args.pages / value for name, value in seconds.items()}
    pdfminer = rate.get("pdfminer")

    print(f"{args.pages}-page report ({len(data) / 1e6:.1f} MB), pymupdf {pymupdf.VersionBind}, median of runs:")
    print(f"  {'extract + digitize + chunk (ours)':36} {rate['ours']:8.0f} pages/s")
    print(f"  {'pymupdf page.get_text() loop':36} {rate['pymupdf']:8.0f} pages/s")
    print(f"  {'pymupdf page.get_text(dict) loop':36} {rate['pymupdf_dict']:8.0f} pages/s")
    if pdfminer is not None:
        print(f"  {'pdfminer.six extract_text':36} {pdfminer:8.0f} pages/s")
    print(
        json.dumps(
            {
                "ours_pages_s": round(rate["ours"], 1),
                "pymupdf_pages_s": round(rate["pymupdf"], 1),
                "pymupdf_dict_pages_s": round(rate["pymupdf_dict"], 1),
                "pdfminer_pages_s": None if pdfminer is None else round(pdfminer, 1),
                "ratio_vs_pymupdf": round(rate["ours"] / rate["pymupdf"], 3),
                "ratio_vs_pymupdf_dict": round(rate["ours"] / rate["pymupdf_dict"], 3),  # our floor: its one pass
                "speedup_vs_pdfminer": None if pdfminer is None else round(rate["ours"] / pdfminer, 1),
                "pages": args.pages,
                "pymupdf_version": pymupdf.VersionBind,
            }
        )
    )


if __name__ == "__main__":
    main()
