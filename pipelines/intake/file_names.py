"""What a client's filename may tell the sniffer, and the name a download gets.

A name never makes content acceptable: it only tells Markdown from plain text, and marks a text file
as a script (a browser, mshta or Windows runs `update.hta` whatever text it holds). Downloads are named
for the detected format, so bytes accepted as text are never saved under an executable extension.
"""

from __future__ import annotations

import re

# Extensions whose files an operating system, browser or interpreter runs (or renders as active markup).
SCRIPT_EXTENSIONS = frozenset(
    {
        ".hta", ".htm", ".html", ".xht", ".xhtml", ".shtml", ".mht", ".mhtml", ".svg", ".svgz", ".xml", ".xsl", ".xslt",
        ".js", ".mjs", ".cjs", ".jse", ".vbs", ".vbe", ".wsf", ".wsh", ".wsc", ".sct", ".bat", ".cmd", ".ps1", ".psm1",
        ".psd1", ".ps1xml", ".url", ".lnk", ".scf", ".inf", ".reg", ".scr", ".pif", ".com", ".cpl", ".msc", ".jar",
        ".sh", ".bash", ".zsh", ".csh", ".ksh", ".command", ".py", ".pyw", ".pl", ".rb", ".php", ".phtml", ".lua",
        ".tcl", ".applescript", ".scpt", ".desktop", ".appref-ms", ".settingcontent-ms", ".library-ms",
    }
)  # fmt: skip
# Names under which text is prose: there, script-like lines are shown, not run.
PROSE_EXTENSIONS = frozenset({".txt", ".text", ".md", ".markdown"})
MARKDOWN_EXTENSIONS = frozenset({".md", ".markdown"})

# The extensions a download may keep for each detected content type; the first is the one it gets otherwise.
_TYPE_EXTENSIONS = {
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "image/png": (".png",),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "image/tiff": (".tiff", ".tif"),
    "image/bmp": (".bmp", ".dib"),
    "image/heic": (".heic", ".heif"),
    "image/avif": (".avif",),
    "application/pdf": (".pdf",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx",),
    "text/plain": (".txt", ".text"),
    "text/markdown": (".md", ".markdown"),
    "video/mp4": (".mp4", ".m4v"),
    "video/quicktime": (".mov", ".qt"),
    "video/webm": (".webm",),
    "video/x-matroska": (".mkv",),
    "video/x-msvideo": (".avi",),
}
_UNKNOWN = (".bin",)
# A trailing ".xyz" counts as an extension only with a letter in it ("report v1.2" has none).
_EXTENSION = re.compile(r"\.(?=[0-9a-z_-]*[a-z])[0-9a-z_-]{1,20}$", re.IGNORECASE)


def extension(filename: str | None) -> str:
    """The name's extension, lower-case with its dot ("" when it has none)."""
    found = _EXTENSION.search(filename or "")
    return found.group().lower() if found else ""


def download_name(filename: str, content_type: str) -> str:
    """The name a download is saved under: the client's name when its extension fits the detected
    content type, else with that extension replaced (`update.hta` holding text becomes `update.txt`,
    not `update.hta.txt`, which a file manager hiding known extensions shows as `update.hta`)."""
    allowed = _TYPE_EXTENSIONS.get(content_type, _UNKNOWN)
    ext = extension(filename)
    if ext in allowed:
        return filename
    stem = filename[: len(filename) - len(ext)] if ext else filename
    return (stem.rstrip(". ") or "download") + allowed[0]
