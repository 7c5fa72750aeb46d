"""Bounds every paged route shares. An offset past any real list still answers an empty page, but stays far inside
what Postgres takes as a bigint OFFSET, so no client value reaches the database unbounded."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

MAX_OFFSET = 1_000_000_000

Offset = Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET, description=f"0 to {MAX_OFFSET:,}")]
