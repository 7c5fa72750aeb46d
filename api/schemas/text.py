"""Text a client sends is stored and compared in Postgres, which holds no NUL, and is shown back to people: no
field takes control characters, but a free text may hold tabs and line breaks. One rule, used by the wire types
(as msgspec constraints), the query parameters and the upload form's fields."""

from __future__ import annotations

import re
from typing import Annotated

from msgspec import Meta

# A regex both msgspec and the OpenAPI schema read (written with escapes, never the raw characters).
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # tab, line feed and carriage return allowed
LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"

Text = Annotated[str, Meta(pattern=TEXT_PATTERN)]
Line = Annotated[str, Meta(pattern=LINE_PATTERN)]

_TEXT = re.compile(TEXT_PATTERN)


def is_text(value: str) -> bool:
    """True when `value` holds no control character but tabs and line breaks (for fields outside a wire type)."""
    return _TEXT.search(value) is not None
