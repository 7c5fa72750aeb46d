"""Download names: the uploaded name, with the extension of the detected content type."""

from __future__ import annotations

import pytest

from pipelines.intake.file_names import download_name, extension


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("update.hta", "text/plain", "update.txt"),  # not update.hta.txt: shown as update.hta where extensions hide
        ("photo.JPG", "image/jpeg", "photo.JPG"),
        ("photo.jpeg", "image/png", "photo.png"),
        ("Report v1.2", "application/pdf", "Report v1.2.pdf"),  # ".2" is no extension
        ("README", "text/markdown", "README.md"),
        ("notes.text", "text/plain", "notes.text"),
        (".hta", "text/plain", "download.txt"),
        ("clip.mp4", "video/quicktime", "clip.mov"),
        ("thing.svg", "application/x-unknown", "thing.bin"),
    ],
)
def test_download_name(filename: str, content_type: str, expected: str) -> None:
    assert download_name(filename, content_type) == expected


def test_extension() -> None:
    assert extension("a.b.HTA") == ".hta"
    assert extension("v1.2") == ""
    assert extension(None) == ""
