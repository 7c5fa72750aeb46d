"""`GET /files/quota-check`: whether an upload of so many files fits the caller's quota, before sending them."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from api.deps import Tenant
from api.schemas.quota import QuotaCheck
from store import quotas


class QuotaController(Controller):
    path = "/api/v2/files"
    tags = ("files",)

    @get("/quota-check")
    async def quota_check(
        self, tenant: Tenant, file_count: Annotated[int, QueryParameter(ge=1, le=1_000_000)]
    ) -> QuotaCheck:
        """A hint, not a reservation: uploads are charged when recorded. Each file uses a credit (a video's
        analysis two more): this month's quota first, then prepaid credits."""
        usage = await quotas.usage(tenant.id)
        shortfall = usage.shortfall(file_count)
        return QuotaCheck(
            can_proceed=not shortfall,
            requested=file_count,
            available=usage.available,
            monthly_limit=usage.limits.monthly_files,
            current_usage=usage.current_usage,
            prepaid_credits=usage.prepaid_credits,
            max_batch_size=usage.limits.max_batch_size,
            max_concurrent_uploads=usage.limits.max_concurrent_uploads,
            message=usage.describe_shortfall(file_count) if shortfall else None,
        )
