"""Wire types of `POST /files/check-duplicates`."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

MAX_HASHES = 250
Sha256 = Annotated[str, Meta(pattern="^[0-9a-fA-F]{64}$")]


class DuplicateCheck(msgspec.Struct, forbid_unknown_fields=True):
    hashes: Annotated[list[Sha256], Meta(min_length=1, max_length=MAX_HASHES)]


class DuplicateCheckResult(msgspec.Struct):
    """Each distinct hash asked about, as it was given and in its order, in one of the two lists."""

    duplicates: list[str]
    unique: list[str]
