"""Wire type of `GET /files/quota-check`."""

from __future__ import annotations

import msgspec


class QuotaCheck(msgspec.Struct):
    """Whether `requested` more files fit this month; -1 (`monthly_limit`, `available`) means unlimited."""

    can_proceed: bool
    requested: int
    available: int
    monthly_limit: int
    current_usage: int
    prepaid_credits: int
    max_batch_size: int
    max_concurrent_uploads: int
    message: str | None
