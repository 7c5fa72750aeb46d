"""A step run on an engine of its own, which runs nothing else, for tests of how one job ends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx
import msgspec

from pipelines.engine.runner import Engine, EngineConfig
from pipelines.engine.step import Step
from store import jobs
from tests.support.callers import Caller


async def run_alone(engine: Engine, step: Step, file_id: uuid.UUID, caller: Caller, http: httpx.AsyncClient) -> dict:
    """Run `step` for the file (3 attempts) on an engine of its own, which runs nothing else, until its job has
    ended; the file's DELETE is refused while the job is under way. The job's last row."""
    job_id, _ = await jobs.enqueue(file_id, caller.tenant_id, step.name, max_attempts=3)
    config = EngineConfig(max_in_flight=1, lease_seconds=10, poll_seconds=0.05, backoff_base_seconds=0.5)
    lonely = Engine(engine.location, {step.name: step}, config)
    stop = asyncio.Event()
    running = asyncio.create_task(lonely.run(stop))
    try:
        await wait_for(job_id, file_id, lambda job: job["attempts"] >= 1 and job["status"] != "failed")
        refused = await http.delete(f"/api/v2/files/{file_id}", headers=caller.headers)
        assert refused.status_code == 409, refused.text
        return await wait_for(job_id, file_id, lambda job: job["status"] in jobs.STATUSES[2:])
    finally:
        stop.set()
        await running


async def wait_for(job_id: uuid.UUID, file_id: uuid.UUID, done: Callable[[dict], bool], seconds: float = 60) -> dict:
    for _ in range(int(seconds / 0.05)):
        row = next(msgspec.structs.asdict(row) for row in await jobs.jobs_of_file(file_id) if row.id == job_id)
        if done(row):
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} still {row['status']}")
