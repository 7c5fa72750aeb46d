"""The durable job queue against the real Postgres: dedup, lanes, concurrent claims, leases,
retries, release, cancellation, and results written to the file row."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection

import asyncpg
import pytest

from store import jobs
from store.tables import File
from store.tables import Job as JobRow
from tests.support.file_rows import insert_file

pytestmark = pytest.mark.integration

# Step names only these tests use: no engine of the session claims them.
STEPS = ("resize", "caption", "ocr", "crashy", "kept", "lost", "a", "b", "c", "d", *(f"step-{i}" for i in range(10)))
# Claimed only by the test of fairness across tenants.
FAIR = "fair"


async def new_file(tenant_id: uuid.UUID) -> uuid.UUID:
    """A file row to hang jobs on (no bytes behind it: the queue never reads them)."""
    return await insert_file(tenant_id, "a.png", media_type="image", content_type="image/png", auto_describe=True)


async def claim_mine(
    worker: str, lane: str, mine: Collection[uuid.UUID], limit: int = 100, lease: float = 30.0
) -> list[jobs.Job]:
    """Claim up to `limit` jobs of the files in `mine`, oldest first. The queue is shared with the
    whole session: jobs that other tests left are held until the end, then released untouched."""
    got: list[jobs.Job] = []
    foreign: list[uuid.UUID] = []
    while len(got) < limit:
        claimed = await jobs.claim(worker, lane, limit - len(got), lease, STEPS)
        if not claimed:
            break
        got += [job for job in claimed if job.file_id in mine]
        foreign += [job.id for job in claimed if job.file_id not in mine]
    await jobs.release(foreign, worker)
    return got


async def row(job_id: uuid.UUID) -> dict:
    return await JobRow.select().where(JobRow.id == job_id).output(load_json=True).first()


async def file_row(file_id: uuid.UUID) -> dict:
    return await File.select().where(File.id == file_id).output(load_json=True).first()


async def test_enqueue_joins_the_callers_transaction_and_deduplicates_active_jobs(alice):
    with pytest.raises(RuntimeError):
        async with File._meta.db.transaction():
            rolled_back = await new_file(alice.tenant_id)
            await jobs.enqueue(rolled_back, alice.tenant_id, "resize")
            raise RuntimeError("the upload failed after its rows were written")
    assert await JobRow.count().where(JobRow.file_id == rolled_back) == 0

    async with File._meta.db.transaction():
        file_id = await new_file(alice.tenant_id)
        job_id, created = await jobs.enqueue(file_id, alice.tenant_id, "resize", payload={"sizes": [64, 256]})
        assert (await jobs.enqueue(file_id, alice.tenant_id, "resize")) == (job_id, False)
    assert created
    assert (await jobs.enqueue(file_id, alice.tenant_id, "resize", lane="backfill")) == (job_id, False)
    other_id, other_created = await jobs.enqueue(file_id, alice.tenant_id, "caption")
    assert other_created and other_id != job_id
    assert (await jobs.active_job(file_id, "resize")).payload == {"sizes": [64, 256]}

    (job,) = [j for j in await claim_mine("w1", "interactive", {file_id}, limit=1)]
    assert (job.id, job.step, job.attempts, job.payload) == (job_id, "resize", 1, {"sizes": [64, 256]})
    assert (await jobs.enqueue(file_id, alice.tenant_id, "resize")) == (job_id, False)  # running is active
    assert await jobs.complete(job_id, "w1")
    assert await jobs.active_job(file_id, "resize") is None
    again, created = await jobs.enqueue(file_id, alice.tenant_id, "resize")
    assert created and again != job_id
    assert [j.id for j in await jobs.jobs_of_file(file_id)] == [job_id, other_id, again]
    counts = await jobs.lane_counts()
    assert counts["interactive"]["queued"] >= 2 and counts["interactive"]["completed"] >= 1
    assert set(counts) == set(jobs.LANES) and set(counts["backfill"]) == set(jobs.STATUSES)
    with pytest.raises(ValueError, match="lane"):
        await jobs.enqueue(file_id, alice.tenant_id, "ocr", lane="bulk")


async def test_claim_takes_the_oldest_first_and_only_from_its_lane(alice):
    file_id = await new_file(alice.tenant_id)
    ids = {}
    for step, lane in (("a", "interactive"), ("b", "backfill"), ("c", "interactive"), ("d", "interactive")):
        ids[step], _ = await jobs.enqueue(file_id, alice.tenant_id, step, lane=lane)
    first = await claim_mine("w1", "interactive", {file_id}, limit=2)
    assert [job.step for job in first] == ["a", "c"]
    assert [job.step for job in await claim_mine("w1", "interactive", {file_id})] == ["d"]
    backfill = await claim_mine("w2", "backfill", {file_id})
    assert [(job.id, job.lane, job.tenant_id) for job in backfill] == [(ids["b"], "backfill", alice.tenant_id)]
    assert await claim_mine("w2", "backfill", {file_id}) == []


async def test_one_tenant_s_backlog_does_not_hold_every_slot(alice, bob):
    backlog = [await new_file(alice.tenant_id) for _ in range(60)]
    for file_id in backlog:
        await jobs.enqueue(file_id, alice.tenant_id, FAIR)
    late, later = await new_file(bob.tenant_id), await new_file(bob.tenant_id)
    await jobs.enqueue(late, bob.tenant_id, FAIR)
    claimed: list[jobs.Job] = []
    try:
        first = await jobs.claim("fair-worker", "interactive", 2, 30, [FAIR])
        # One of each runs now: Alice's next and Bob's next take the same turn, the older first.
        await jobs.enqueue(later, bob.tenant_id, FAIR)
        second = await jobs.claim("fair-worker", "interactive", 2, 30, [FAIR])
        claimed = first + second
    finally:
        await jobs.release([job.id for job in claimed], "fair-worker")
        for file_id in (*backlog, late, later):
            await jobs.cancel_for_file(file_id)

    assert [job.file_id for job in first] == [backlog[0], late]
    assert [job.file_id for job in second] == [backlog[1], later]


async def test_a_follow_up_keeps_its_job_s_place_in_the_queue(alice):
    """A file under way finishes before a file queued after it starts."""
    first, later = await new_file(alice.tenant_id), await new_file(alice.tenant_id)
    job_id, _ = await jobs.enqueue(first, alice.tenant_id, "a")
    await jobs.enqueue(later, alice.tenant_id, "a")
    (job,) = await claim_mine("w1", "interactive", {first, later}, limit=1)
    assert job.id == job_id and await jobs.complete(job_id, "w1", follow_ups=["b"])
    claimed = await claim_mine("w1", "interactive", {first, later}, limit=2)
    assert [(job.file_id, job.step) for job in claimed] == [(first, "b"), (later, "a")]


async def test_concurrent_claimers_never_get_the_same_job(alice):
    files = {await new_file(alice.tenant_id) for _ in range(3)}
    expected = {(await jobs.enqueue(f, alice.tenant_id, f"step-{i}"))[0] for f in files for i in range(10)}
    start = asyncio.Barrier(5)

    async def worker(name: str) -> list[uuid.UUID]:
        """Small claims in a loop, each its own transaction on its own connection."""
        await start.wait()
        got: list[uuid.UUID] = []
        while claimed := await jobs.claim(name, "interactive", 3, 30, STEPS):
            got += [job.id for job in claimed]
        return got

    results = await asyncio.gather(*(worker(f"w{n}") for n in range(5)))
    everything = [job_id for got in results for job_id in got]
    assert len(everything) == len(set(everything)), "a job was claimed twice"
    assert expected <= set(everything)
    assert sum(1 for got in results if set(got) & expected) > 1, "the claims did not interleave"
    for name, got in zip((f"w{n}" for n in range(5)), results, strict=True):
        await jobs.release([job_id for job_id in got if job_id not in expected], name)


async def test_an_expired_lease_passes_the_job_to_another_worker(alice):
    file_id = await new_file(alice.tenant_id)
    kept, _ = await jobs.enqueue(file_id, alice.tenant_id, "kept")
    assert [job.id for job in await claim_mine("w1", "interactive", {file_id}, lease=0.2)] == [kept]
    assert await jobs.extend_leases([kept], "w1", 30) == {kept}
    await asyncio.sleep(0.3)
    assert await claim_mine("w2", "interactive", {file_id}) == []  # the heartbeat kept it

    job_id, _ = await jobs.enqueue(file_id, alice.tenant_id, "lost")
    (job,) = await claim_mine("w1", "interactive", {file_id}, lease=0.2)
    await jobs.add_task_id(job_id, "w1", "task-1")
    await asyncio.sleep(0.3)
    (again,) = await claim_mine("w2", "interactive", {file_id})
    assert (again.id, job.attempts, again.attempts) == (job_id, 1, 2)
    assert not await jobs.complete(job_id, "w1", {"variant_status": "completed"})
    assert await jobs.extend_leases([job_id, kept], "w1", 30) == {kept}
    assert await jobs.fail(job_id, "w1", "late") == "lost"
    await jobs.add_task_id(job_id, "w1", "task-ignored")
    await jobs.add_task_id(job_id, "w2", "task-2")
    assert await jobs.complete(job_id, "w2")
    done = await row(job_id)
    assert (done["status"], done["worker_id"], done["task_ids"]) == ("completed", "w2", ["task-1", "task-2"])
    assert (await file_row(file_id))["variant_status"] is None


async def test_a_job_whose_workers_keep_dying_fails(alice):
    file_id = await new_file(alice.tenant_id)
    job_id, _ = await jobs.enqueue(file_id, alice.tenant_id, "crashy", max_attempts=2)
    for worker in ("w1", "w2"):
        assert [job.id for job in await claim_mine(worker, "interactive", {file_id}, lease=0.1)] == [job_id]
        await asyncio.sleep(0.15)
    assert await claim_mine("w3", "interactive", {file_id}) == []
    failed = await row(job_id)
    assert (failed["status"], failed["attempts"]) == ("failed", 2)
    assert failed["error"] == "lease expired 2 times (worker lost)"
    assert failed["finished_at"] is not None and failed["lease_expires_at"] is None


async def test_a_failed_attempt_is_retried_after_a_backoff_then_fails_for_good(alice):
    file_id = await new_file(alice.tenant_id)
    job_id, _ = await jobs.enqueue(file_id, alice.tenant_id, "resize", max_attempts=2)
    backoff = {"backoff_base_seconds": 0.2, "backoff_max_seconds": 1.0}
    final = {"variant_status": "failed", "error_message": "decoder crashed"}
    await claim_mine("w1", "interactive", {file_id})
    assert await jobs.fail(job_id, "w1", "decoder crashed", final_file_changes=final, **backoff) == "retrying"
    waiting = await row(job_id)
    assert (waiting["status"], waiting["error"], waiting["worker_id"]) == ("queued", "decoder crashed", None)
    assert 0.199 < (waiting["available_at"] - waiting["updated_at"]).total_seconds() < 0.221  # base, jitter
    assert await claim_mine("w1", "interactive", {file_id}) == []  # still backing off
    await asyncio.sleep(0.35)
    (job,) = await claim_mine("w2", "interactive", {file_id})
    assert job.attempts == 2
    assert (await file_row(file_id))["variant_status"] is None
    assert await jobs.fail(job_id, "w2", "decoder crashed", final_file_changes=final, **backoff) == "failed"
    assert (await row(job_id))["status"] == "failed"
    assert {k: (await file_row(file_id))[k] for k in final} == final

    fatal, _ = await jobs.enqueue(file_id, alice.tenant_id, "caption")
    await claim_mine("w1", "interactive", {file_id})
    assert await jobs.fail(fatal, "w1", "not an image", retryable=False) == "failed"
    assert (await row(fatal))["attempts"] == 1


async def test_complete_writes_the_results_to_the_file_atomically(alice):
    file_id = await new_file(alice.tenant_id)
    job_id, _ = await jobs.enqueue(file_id, alice.tenant_id, "resize")
    await claim_mine("w1", "interactive", {file_id})
    with pytest.raises(asyncpg.NotNullViolationError):
        await jobs.complete(job_id, "w1", {"variant_status": "completed", "media_type": None})
    assert (await row(job_id))["status"] == "running"
    assert (await file_row(file_id))["variant_status"] is None

    changes = {
        "variant_status": "completed",
        "variant_count": 2,
        "dimensions": {"width": 640, "height": 480},
        "text_regions": '[{"text": "EXIT", "confidence": 0.9}]',  # JSON text works as well as a dict
        "tags": ["sign"],
    }
    assert await jobs.complete(job_id, "w1", changes)
    stored = await file_row(file_id)
    assert stored["dimensions"] == {"width": 640, "height": 480}
    assert stored["text_regions"] == [{"text": "EXIT", "confidence": 0.9}]
    assert (stored["variant_status"], stored["variant_count"], stored["tags"]) == ("completed", 2, ["sign"])
    done = await row(job_id)
    assert done["status"] == "completed" and done["finished_at"] is not None


async def test_unknown_file_columns_are_refused_before_anything_happens(alice):
    file_id = await new_file(alice.tenant_id)
    job_id, _ = await jobs.enqueue(file_id, alice.tenant_id, "resize")
    await claim_mine("w1", "interactive", {file_id})
    with pytest.raises(ValueError, match="not columns of file"):
        await jobs.complete(job_id, "w1", {"variant_status": "completed", "status; DROP TABLE file": 1})
    with pytest.raises(ValueError, match="not columns of file"):
        await jobs.fail(job_id, "w1", "boom", final_file_changes={"id": uuid.uuid4()})
    assert (await row(job_id))["status"] == "running"


async def test_release_gives_running_jobs_back_as_if_never_claimed(alice):
    file_id = await new_file(alice.tenant_id)
    ids = [(await jobs.enqueue(file_id, alice.tenant_id, step))[0] for step in ("a", "b")]
    await claim_mine("w1", "interactive", {file_id})
    assert await jobs.release(ids, "w2") == 0
    assert await jobs.release(ids, "w1") == 2
    for job_id in ids:
        back = await row(job_id)
        assert (back["status"], back["attempts"], back["worker_id"]) == ("queued", 0, None)
        assert back["lease_expires_at"] is None and back["started_at"] is None
    assert [(job.id, job.attempts) for job in await claim_mine("w2", "interactive", {file_id})] == [
        (ids[0], 1),
        (ids[1], 1),
    ]


async def test_cancel_for_file_cancels_queued_jobs_only(alice):
    file_id = await new_file(alice.tenant_id)
    running, _ = await jobs.enqueue(file_id, alice.tenant_id, "resize")
    await claim_mine("w1", "interactive", {file_id})
    queued, _ = await jobs.enqueue(file_id, alice.tenant_id, "caption")
    assert await jobs.cancel_for_file(file_id) == 1
    assert [(j.id, j.status) for j in await jobs.jobs_of_file(file_id)] == [
        (running, "running"),
        (queued, "cancelled"),
    ]
    assert (await jobs.enqueue(file_id, alice.tenant_id, "caption"))[1]  # cancelled is not active


async def test_deleting_the_file_deletes_its_jobs(alice):
    file_id = await new_file(alice.tenant_id)
    await jobs.enqueue(file_id, alice.tenant_id, "resize")
    await jobs.enqueue(file_id, alice.tenant_id, "caption")
    await File.delete().where(File.id == file_id)
    assert await jobs.jobs_of_file(file_id) == []
