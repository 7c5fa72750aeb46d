"""`POST /files/check-duplicates`: which content hashes the caller already has, before uploading them."""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import JSONBody

from api.deps import Tenant
from api.schemas.duplicates import DuplicateCheck, DuplicateCheckResult
from store import files


class DuplicatesController(Controller):
    path = "/api/v2/files"
    tags = ("files",)

    @post("/check-duplicates", status_code=200)
    async def check_duplicates(self, tenant: Tenant, data: JSONBody[DuplicateCheck]) -> DuplicateCheckResult:
        """SHA-256 hashes (hex, either case) matching one of the caller's live files are duplicates: an upload
        of that content with `skip_duplicates=true` would be skipped. Soft-deleted files do not count."""
        asked = list(dict.fromkeys(data.hashes))
        existing = await files.existing_sha256(tenant.id, [sha256.lower() for sha256 in asked])
        return DuplicateCheckResult(
            duplicates=[sha256 for sha256 in asked if sha256.lower() in existing],
            unique=[sha256 for sha256 in asked if sha256.lower() not in existing],
        )
