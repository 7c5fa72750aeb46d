"""What fair use costs a streaming upload: small uploads through a real `scopix serve` (a professional tenant, so
its monthly quota is checked), against the quota work each of them does (admission with a lease, the charge in its
own transaction, the lease's release) run alone against the same database, in the same process; plus how many
charges a second one tenant's row takes when `--racers` transactions race for it (as replicas do).

    .venv/bin/python benchmarks/quotas.py [--uploads 200] [--racers 8]

The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.service import running_service  # noqa: E402


async def _uploads_ms(base: str, key: str, count: int) -> list[float]:
    """Each upload's latency, one after the other (small text files, all new)."""
    latencies = []
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        for n in range(count):
            started = time.perf_counter()
            response = await client.post("/api/v2/files/upload", files={"file": (f"{n}.txt", f"note {n}\n".encode())})
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 201, response.text
    return latencies


async def _quota_work_ms(count: int, racers: int) -> tuple[list[float], float]:
    """The quota work of one upload, `count` times, each timed; and charges a second with `racers` racing."""
    from store import quotas
    from store.database import pooled
    from store.tenants import ensure_tenant

    async with pooled(racers, min_size=1):
        tenant = await ensure_tenant("quota-bench", "enterprise")
        latencies = []
        for _ in range(count):
            started = time.perf_counter()
            lease = await quotas.acquire_lease(tenant.id, 60, retry_after=5)
            await quotas.charge(tenant.id, 1, [])
            await quotas.release_lease(lease)
            latencies.append((time.perf_counter() - started) * 1000)
        per_racer = count // racers
        started = time.perf_counter()
        await asyncio.gather(*(_charges(tenant.id, per_racer) for _ in range(racers)))
        return latencies, per_racer * racers / (time.perf_counter() - started)


async def _charges(tenant_id: uuid.UUID, count: int) -> None:
    from store import quotas

    for _ in range(count):
        await quotas.charge(tenant_id, 1, [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--racers", type=int, default=8)
    args = parser.parse_args()

    from store.services import local_services

    with running_service("professional", engine__serve="false") as service, local_services(service.data_dir, s3=False):
        uploads = asyncio.run(_uploads_ms(service.base, service.key, args.uploads))
        quota, racing = asyncio.run(_quota_work_ms(args.uploads, args.racers))
    upload_ms, quota_ms = statistics.median(uploads), statistics.median(quota)
    print(
        json.dumps(
            {
                "uploads": args.uploads,
                "upload_median_ms": round(upload_ms, 2),
                "quota_work_median_ms": round(quota_ms, 2),
                "quota_share_of_upload": round(quota_ms / upload_ms, 3),
                "racers": args.racers,
                "racing_charges_per_s": round(racing, 1),
                "cpus": len(os.sched_getaffinity(0)),
            }
        )
    )


if __name__ == "__main__":
    main()
