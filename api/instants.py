"""A client's date and time, checked to be an instant: one whose offset carries it past year 1 or 9999 in UTC
(`0001-01-01T00:00:00+14:00`) has none, and would fail where it is compared with stored times."""

from __future__ import annotations

from datetime import UTC, datetime

from store.errors import InvalidInput


def instant(name: str, value: datetime | None) -> datetime | None:
    """`value` unchanged, or the field's 422 when it names no instant in UTC."""
    if value is not None and value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise InvalidInput("is outside the range of dates in UTC (years 1 to 9999)", field=name) from None
    return value
