"""Bounds every paged route shares. An offset past any real list still answers an empty page, but stays far inside
what Postgres takes as a bigint OFFSET, so no client value reaches the database unbounded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar.params import QueryParameter

MAX_OFFSET = 1_000_000_000

Offset = Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET, description=f"0 to {MAX_OFFSET:,}")]


@dataclass(frozen=True)
class Page:
    """The page a client asked for: `limit` items after the first `offset`."""

    offset: int
    limit: int

    def fields(self, shown: int, total: int) -> dict[str, Any]:
        """The paging fields of an answer that shows `shown` of `total` items."""
        return {"limit": self.limit, "offset": self.offset, "has_more": self.offset + shown < total}
