"""A real `scopix serve` on a fresh data directory, with one API key, for the benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from store.status import TERMINAL

ROOT = Path(__file__).resolve().parent.parent
POLL_S = 1.0
STALL_S = 180.0  # no file finishing for this long: the service is stuck
SCOPIX = Path(sys.executable).parent / "scopix"


@dataclass(frozen=True)
class Service:
    base: str
    key: str
    pid: int
    data_dir: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_service(tier: str = "enterprise", **settings: str) -> Iterator[Service]:
    """Start the server (settings given as keyword arguments named as their environment variables, lower case and
    without SCOPIX_: `engine__serve="false"`), wait for health, make a key (of a tenant of `tier`). Benchmarks
    measure throughput, not fair use: the tenant is of the tier without a monthly quota, and the key's request rate
    is not limited unless the settings say otherwise."""
    data_dir = Path(tempfile.mkdtemp(prefix="scopix-bench-"))
    port = _free_port()
    settings = {"quotas__request_burst": "1000000", **settings}
    env = {**os.environ, "SCOPIX_LOG_LEVEL": "warning", **{f"SCOPIX_{k.upper()}": v for k, v in settings.items()}}
    server = subprocess.Popen([str(SCOPIX), "serve", "--data-dir", str(data_dir), "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(900):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            time.sleep(0.2)
        created = subprocess.run(
            [str(SCOPIX), "keys", "create", "--tenant", "bench", "--data-dir", str(data_dir), "--tier", tier],
            check=True, capture_output=True, text=True, env=env,
        )  # fmt: skip
        yield Service(base, created.stdout.strip().splitlines()[-1], server.pid, data_dir)
    finally:
        server.terminate()
        server.wait(timeout=120)


async def uploaded_and_processed(base: str, key: str, photos: list[bytes], required: tuple[str, ...] = ()) -> float:
    """Seconds from the first upload to the last file's `completed_at` (the server's record of its last step).
    Every file must end `completed`, and so must each of its `required` components (even one the service may
    skip). Polling is sparse (a listing call a second) so that measuring does not load the server."""
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
        started = datetime.now(UTC)
        gate = asyncio.Semaphore(4)

        async def send(index: int, content: bytes) -> str:
            async with gate:
                response = await client.post("/api/v2/files/upload", files={"file": (f"{index}.jpg", content)})
                response.raise_for_status()
                return response.json()["file_id"]

        file_ids = await asyncio.gather(*(send(index, content) for index, content in enumerate(photos)))
        pending, progressed = set(file_ids), time.monotonic()
        while pending:
            if time.monotonic() - progressed > STALL_S:
                raise TimeoutError(f"{len(pending)} of {len(file_ids)} files: no progress in {STALL_S:.0f} s")
            await asyncio.sleep(POLL_S)
            for at in range(0, len(pending), 100):
                params = {"ids": sorted(pending)[at : at + 100], "limit": 100}
                page = (await client.get("/api/v2/files", params=params)).json()
                for item in page["items"]:
                    if item["primary_status"] not in TERMINAL:
                        continue
                    if item["primary_status"] != "completed" or any(item[name] != "completed" for name in required):
                        raise RuntimeError(f"{item['id']} ended {item['primary_status']}: {item}")
                    pending.discard(item["id"])
                    progressed = time.monotonic()
        finished = [
            datetime.fromisoformat((await client.get(f"/api/v2/files/uploads-status/{file_id}")).json()["completed_at"])
            for file_id in file_ids
        ]
        return (max(finished) - started).total_seconds()
