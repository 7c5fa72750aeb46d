"""The refusal every intake check raises, in a module of its own so each check can live in its own module."""

from __future__ import annotations


class UnsupportedContent(Exception):
    """Content we refuse; `reason` is a short human sentence for the API error detail, `code` a stable
    machine code: empty_file, executable, script, archive, polyglot or unsupported_media_type."""

    def __init__(self, reason: str, code: str = "unsupported_media_type") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
