"""Real files of every supported kind, made in the tests (no fixtures on disk)."""

from __future__ import annotations

import io

import av
import docx
import numpy as np
import pymupdf
from PIL import Image


def image(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def pdf(text: str = "Safety manual: inspections are quarterly.", pages: int = 1) -> bytes:
    document = pymupdf.open()
    for number in range(pages):
        page = document.new_page()
        page.insert_text((72, 72), f"{text} (page {number + 1})")
    return document.tobytes()


def docx_file(text: str = "Quarterly inspection report") -> bytes:
    document = docx.Document()
    document.add_heading("Report", level=1)
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def mp4(frames: int = 10, size: tuple[int, int] = (64, 48)) -> bytes:
    """A real H.264 MP4 encoded with PyAV."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for index in range(frames):
            pixels = np.full((size[1], size[0], 3), index * 20 % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


TEXT = b"Inspection notes\n\nThe north pillar shows surface cracks.\n"
MARKDOWN = b"# Inspection\n\n- north pillar: cracks\n- south pillar: fine\n\nSee [the plan](plan.pdf).\n"
