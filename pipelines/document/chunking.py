"""Structure-aware chunks for retrieval, cut from the digitized elements.

A heading always starts a new chunk, and the chunk records the headings above it (`heading_hierarchy`), so a
chunk never mixes sections. Within a section, whole elements are packed while they fit `max_tokens`; an
element larger than that is split at its own seams: a paragraph at sentence boundaries (a sentence longer
than the budget at word boundaries), a list between items, a table between rows with its header row
repeated. Overlap is used only inside such a split element (the last sentences, up to `overlap_tokens`, begin
the next part): there a cut falls mid-thought, whereas between whole elements the boundary is the author's.

Headings are not part of `content`: they are in `heading_hierarchy`, for the embedder to prepend if it wants.
Tokens are counted by the caller's `count_tokens` (the embedder's tokenizer): each piece once, and every
chunk's final `token_count` exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pipelines.document.digitize import Digitization, Element

MAX_TOKENS = 256
OVERLAP_TOKENS = 32

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_SEPARATOR = "\n\n"


@dataclass(slots=True)
class Chunk:
    chunk_index: int
    content: str
    heading_hierarchy: list[str]
    page_numbers: list[int]
    chunk_type: str  # paragraph | table | list | key_value | figure | mixed
    token_count: int


@dataclass(slots=True)
class _Piece:
    text: str
    kind: str
    page: int
    tokens: int


class _Tokens:
    """Token counts that add up: the tokenizer's fixed overhead (special tokens) is counted once per text."""

    def __init__(self, count_tokens: Callable[[str], int]) -> None:
        self.count_tokens = count_tokens
        self.overhead = count_tokens("")
        self.separator = max(0, count_tokens(f"a{_SEPARATOR}b") - count_tokens("a") - count_tokens("b") + self.overhead)

    def of(self, text: str) -> int:
        """Tokens of `text` without the overhead, so that pieces can be summed."""
        return self.count_tokens(text) - self.overhead


def chunk(
    digitization: Digitization,
    count_tokens: Callable[[str], int],
    *,
    max_tokens: int = MAX_TOKENS,
    overlap_tokens: int = OVERLAP_TOKENS,
) -> list[Chunk]:
    if overlap_tokens >= max_tokens:
        raise ValueError("overlap_tokens must be smaller than max_tokens")
    tokens = _Tokens(count_tokens)
    chunks: list[Chunk] = []
    headings: list[tuple[int, str]] = []  # (level, text) from the outermost down
    section: list[_Piece] = []

    def flush() -> None:
        hierarchy = [text for _, text in headings]
        for pieces in _pack(section, tokens, max_tokens):
            content = _SEPARATOR.join(piece.text for piece in pieces)
            kinds = {piece.kind for piece in pieces}
            chunks.append(
                Chunk(
                    chunk_index=len(chunks),
                    content=content,
                    heading_hierarchy=hierarchy,
                    page_numbers=sorted({piece.page for piece in pieces}),
                    chunk_type=kinds.pop() if len(kinds) == 1 else "mixed",
                    token_count=count_tokens(content),
                )
            )
        section.clear()

    for page in digitization.pages:
        for element in page.elements:
            if element.type == "heading":
                flush()
                level = (element.metadata or {}).get("level", 1)
                while headings and headings[-1][0] >= level:
                    headings.pop()
                headings.append((level, element.content))
            elif element.content.strip():
                section.extend(_pieces(element, page.page_number, tokens, max_tokens, overlap_tokens))
    flush()
    return chunks


def _pack(pieces: list[_Piece], tokens: _Tokens, max_tokens: int) -> Iterator[list[_Piece]]:
    """Greedy: as many whole pieces as fit in one chunk, in order. A chunk's size is the overhead, its pieces'
    tokens and a separator between each two, kept as pieces are added."""
    current: list[_Piece] = []
    size = tokens.overhead
    for piece in pieces:
        if current and size + tokens.separator + piece.tokens > max_tokens:
            yield current
            current, size = [], tokens.overhead
        size += piece.tokens + (tokens.separator if current else 0)
        current.append(piece)
    if current:
        yield current


def _pieces(element: Element, page: int, tokens: _Tokens, max_tokens: int, overlap: int) -> list[_Piece]:
    """The element whole if it fits, else its parts, each within `max_tokens`."""
    kind = element.type
    whole = tokens.of(element.content)
    if tokens.overhead + whole <= max_tokens:
        return [_Piece(element.content, kind, page, whole)]
    if kind == "table":
        parts = _split_table(element.content, tokens, max_tokens)
    elif kind == "list":
        parts = _pack_units(element.content.split("\n"), tokens, max_tokens, 0, "\n")
    else:
        parts = _pack_units(_SENTENCE_END.split(element.content), tokens, max_tokens, overlap, " ")
    return [_Piece(text, kind, page, tokens.of(text)) for text in parts]


def _split_table(table: str, tokens: _Tokens, max_tokens: int) -> list[str]:
    """Rows packed under a repeated header (the header line and the |---| rule)."""
    lines = table.split("\n")
    header = "\n".join(lines[:2])
    budget = max_tokens - tokens.of(header) - tokens.separator
    if budget <= 0:  # the header alone is too long: the table is text
        return _pack_units(lines, tokens, max_tokens, 0, "\n")
    return [f"{header}\n{rows}" for rows in _pack_units(lines[2:], tokens, budget, 0, "\n")]


def _pack_units(units: list[str], tokens: _Tokens, max_tokens: int, overlap: int, joiner: str) -> list[str]:
    """Greedy packing of units (sentences, items, rows); a unit over the budget is cut at word boundaries.
    With `overlap`, each part after the first begins with the previous part's last units up to that many tokens."""
    budget = max_tokens - tokens.overhead
    sized: list[tuple[str, int]] = []
    for raw in units:
        if unit := raw.strip():
            sized.extend(_fit(unit, tokens, budget))
    parts: list[str] = []
    current: list[tuple[str, int]] = []
    carried = 0  # how many units at the head of `current` are overlap
    for unit, size in sized:
        if len(current) > carried and _size(current, tokens) + tokens.separator + size > budget:
            parts.append(joiner.join(text for text, _ in current))
            current = _tail(current, tokens, overlap, budget - size - tokens.separator)
            carried = len(current)
        current.append((unit, size))
    if len(current) > carried:
        parts.append(joiner.join(text for text, _ in current))
    return parts


def _fit(unit: str, tokens: _Tokens, budget: int) -> list[tuple[str, int]]:
    """The unit and its size, or its word-boundary cuts when it is over the budget (a binary search each)."""
    size = tokens.of(unit)
    if size <= budget:
        return [(unit, size)]
    words, cuts = unit.split(), []
    while words:
        low, high = 1, len(words)
        while low < high:
            middle = (low + high + 1) // 2
            if tokens.of(" ".join(words[:middle])) <= budget:
                low = middle
            else:
                high = middle - 1
        cut = " ".join(words[:low])
        cuts.append((cut, tokens.of(cut)))
        words = words[low:]
    return cuts


def _size(units: list[tuple[str, int]], tokens: _Tokens) -> int:
    return sum(size for _, size in units) + tokens.separator * max(0, len(units) - 1)


def _tail(units: list[tuple[str, int]], tokens: _Tokens, overlap: int, room: int) -> list[tuple[str, int]]:
    """The last whole units within `overlap` tokens (and within the room the next unit leaves)."""
    tail: list[tuple[str, int]] = []
    for unit in reversed(units):
        if _size([unit, *tail], tokens) > min(overlap, room):
            break
        tail.insert(0, unit)
    return tail
