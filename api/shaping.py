"""Wire shapes from store rows: a field named as one of the row's is taken from the row as it is, converted by
msgspec (nested rows too), so a presenter writes only the fields it computes."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

import msgspec

Shape = TypeVar("Shape", bound=msgspec.Struct)


@cache
def shared_fields(kind: type[msgspec.Struct], row_type: type[msgspec.Struct]) -> tuple[str, ...]:
    """The fields of `kind` that a row of `row_type` has too."""
    return tuple(name for name in kind.__struct_fields__ if name in row_type.__struct_fields__)


def fields_of(row: msgspec.Struct, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in names}


def shaped(kind: type[Shape], row: msgspec.Struct | None = None, /, **computed: Any) -> Shape:
    """`kind` from the row's fields of its names and the `computed` ones (which win)."""
    fields = {} if row is None else fields_of(row, shared_fields(kind, type(row)))
    return msgspec.convert(fields | computed, kind, from_attributes=True)
