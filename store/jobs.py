"""The durable job queue: one `job` row per (file, step), claimed by workers on many machines.

Workers claim rows with `FOR UPDATE SKIP LOCKED` and hold them under a lease that they renew; a
worker that dies simply lets its lease expire, and the next claim takes the job again as a new
attempt. Nothing is lost: every job ends `completed`, `failed` or `cancelled`. A worker holds a
job while the row is `running` under its worker id, even past the lease, until another claims it.

Every function is one transaction (one statement, or several in an explicit transaction), or joins
the caller's open Piccolo transaction: the upload enqueues the first jobs in the transaction that
inserts the file row.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate
from piccolo.columns import Column
from piccolo.engine.postgres import PostgresTransaction

from store import sessions
from store.rows import JobRow, as_row, as_rows
from store.tables import File
from store.tables import Job as JobTable

LANES = ("interactive", "backfill")
STATUSES = ("queued", "running", "completed", "failed", "cancelled")
ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class Job:
    """A claimed job, as a worker needs it."""

    id: uuid.UUID
    file_id: uuid.UUID
    tenant_id: uuid.UUID
    step: str
    lane: str
    attempts: int  # attempts started so far, this claim included
    max_attempts: int
    payload: dict[str, Any]
    traceparent: str | None = None  # the W3C trace context it was queued in


# The conflict target names the partial unique index, so a second active job for the same
# (file, step) finds the existing row; the no-op update locks and returns it.
_ENQUEUE = """
INSERT INTO job (
    id, file_id, tenant, step, lane, status, max_attempts, payload, traceparent, available_at, created_at, updated_at,
    backfill_id
)
VALUES (
    {}, {}, {}, {}, {}, 'queued', {}, {}::jsonb, {}, coalesce({}::timestamptz, now()), clock_timestamp(), now(), {}
)
ON CONFLICT (file_id, step) WHERE status IN ('queued', 'running') DO UPDATE SET updated_at = job.updated_at
RETURNING id
"""

# Jobs whose lease expired once too often: their workers keep dying, so retrying is pointless.
_FAIL_LOST = """
WITH lost AS (
    SELECT id FROM job
    WHERE lane = {} AND status = 'running' AND lease_expires_at <= now() AND attempts >= max_attempts
    FOR UPDATE SKIP LOCKED
)
UPDATE job SET status = 'failed', error = format('lease expired %s times (worker lost)', job.attempts),
    lease_expires_at = NULL, finished_at = now(), updated_at = now()
FROM lost WHERE job.id = lost.id
"""

# One claim of the jobs a condition selects (the two constants below); lane, steps, limit, worker id, lease
# seconds. A worker claims only the steps it can run (CPU and GPU workers, test engines).
_CLAIM = """
WITH picked AS (
    SELECT id FROM job
    WHERE lane = {{}} AND step = ANY({{}}::varchar[]) AND {condition}
    ORDER BY {order}
    LIMIT {{}}
    FOR UPDATE SKIP LOCKED
)
UPDATE job SET status = 'running', worker_id = {{}}, lease_expires_at = now() + make_interval(secs => {{}}),
    attempts = job.attempts + 1, started_at = coalesce(job.started_at, now()), updated_at = now()
FROM picked WHERE job.id = picked.id
RETURNING job.id, job.file_id, job.tenant, job.step, job.lane, job.attempts, job.max_attempts, job.payload,
    job.traceparent, job.available_at, job.created_at
"""
_RECLAIM_EXPIRED = _CLAIM.format(
    condition="status = 'running' AND lease_expires_at <= now() AND attempts < max_attempts",
    order="lease_expires_at",
)
# Queued jobs are claimed fairly across tenants: a tenant's job takes its turn after as many of that tenant's jobs
# as run in the lane already and as wait before it, so a tenant's backlog of a thousand jobs holds one slot in
# turn with every other tenant's, not all of them. Within a tenant, and between equal turns, the oldest goes first.
# Lane, steps, limit, worker id, lease seconds (the lane twice: once for what runs, once for what waits).
_CLAIM_QUEUED = """
WITH running AS (
    SELECT tenant, count(*) AS n FROM job WHERE lane = {} AND status = 'running' GROUP BY tenant
),
waiting AS (
    SELECT id, tenant, available_at, created_at,
        row_number() OVER (PARTITION BY tenant ORDER BY available_at, created_at) AS turn
    FROM job
    WHERE lane = {} AND step = ANY({}::varchar[]) AND status = 'queued' AND available_at <= now()
),
picked AS (
    SELECT job.id FROM job
    JOIN waiting ON waiting.id = job.id
    LEFT JOIN running ON running.tenant = waiting.tenant
    WHERE job.status = 'queued'
    ORDER BY waiting.turn + coalesce(running.n, 0), waiting.available_at, waiting.created_at
    LIMIT {}
    FOR UPDATE OF job SKIP LOCKED
)
UPDATE job SET status = 'running', worker_id = {}, lease_expires_at = now() + make_interval(secs => {}),
    attempts = job.attempts + 1, started_at = coalesce(job.started_at, now()), updated_at = now()
FROM picked WHERE job.id = picked.id
RETURNING job.id, job.file_id, job.tenant, job.step, job.lane, job.attempts, job.max_attempts, job.payload,
    job.traceparent, job.available_at, job.created_at
"""

# "Held": running under this worker's id; a job whose lease expired stays held until reclaimed.
_HELD = "id = {} AND worker_id = {} AND status = 'running'"

_ADD_TASK_ID = f"UPDATE job SET task_ids = array_append(task_ids, {{}}), updated_at = now() WHERE {_HELD}"

_EXTEND = """
UPDATE job SET lease_expires_at = now() + make_interval(secs => {}), updated_at = now()
WHERE id = ANY({}) AND worker_id = {} AND status = 'running'
RETURNING id
"""

_COMPLETE = f"""
UPDATE job SET status = 'completed', error = NULL, lease_expires_at = NULL, finished_at = now(), updated_at = now()
WHERE {_HELD}
RETURNING file_id, tenant, lane, step, available_at, backfill_id
"""

_LOCK_HELD = f"SELECT file_id, step, attempts, max_attempts FROM job WHERE {_HELD} FOR UPDATE"

_RETRY = """
UPDATE job SET status = 'queued', error = {}, available_at = now() + make_interval(secs => {}),
    worker_id = NULL, lease_expires_at = NULL, updated_at = now()
WHERE id = {}
"""

_FAIL = """
UPDATE job SET status = 'failed', error = {}, lease_expires_at = NULL, finished_at = now(), updated_at = now()
WHERE id = {}
"""

# The released attempt did not really happen: it is taken back, and so is the start of a job
# that has none left.
_RELEASE = """
UPDATE job SET status = 'queued', available_at = now(), attempts = attempts - 1,
    started_at = CASE WHEN attempts = 1 THEN NULL ELSE started_at END,
    worker_id = NULL, lease_expires_at = NULL, updated_at = now()
WHERE id = ANY({}) AND worker_id = {} AND status = 'running'
RETURNING id
"""

_CANCEL = """
UPDATE job SET status = 'cancelled', finished_at = now(), updated_at = now()
WHERE file_id = {} AND status = 'queued'
RETURNING id
"""

_COUNTS = "SELECT lane, status, count(*) AS n FROM job GROUP BY lane, status"

# Columns a job may set on its file: every column but the primary key.
_FILE_COLUMNS: dict[str, Column] = {c._meta.name: c for c in File._meta.columns if not c._meta.primary_key}


def _transaction() -> PostgresTransaction:
    """A new transaction, or the caller's when one is open (Piccolo then treats this as a no-op)."""
    transaction: PostgresTransaction = JobTable._meta.db.transaction()
    return transaction


def _check_lane(lane: str) -> None:
    if lane not in LANES:
        raise ValueError(f"unknown lane {lane!r}; expected one of {LANES}")


def _file_changes(changes: Mapping[str, Any] | None) -> dict[Column | str, Any]:
    """The changes keyed by column, refusing names that are not columns of `file` before any SQL
    is built. Piccolo encodes a dict or list for a JSON column and passes a string as JSON text."""
    unknown = sorted(set(changes or {}) - set(_FILE_COLUMNS))
    if unknown:
        raise ValueError(f"not columns of file: {', '.join(unknown)}")
    return {_FILE_COLUMNS[name]: value for name, value in (changes or {}).items()}


async def _apply_file_changes(file_id: uuid.UUID, changes: dict[Column | str, Any]) -> None:
    if changes:
        await File.update(changes).where(File.id == file_id)


def _job(row: Mapping[str, Any]) -> Job:
    return Job(
        id=row["id"],
        file_id=row["file_id"],
        tenant_id=row["tenant"],
        step=row["step"],
        lane=row["lane"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        payload=json.loads(row["payload"]),
        traceparent=row["traceparent"],
    )


async def enqueue(
    file_id: uuid.UUID,
    tenant_id: uuid.UUID,
    step: str,
    *,
    lane: str = "interactive",
    max_attempts: int = 3,
    payload: Mapping[str, Any] | None = None,
    available_since: datetime | None = None,
    backfill_id: uuid.UUID | None = None,
) -> tuple[uuid.UUID, bool]:
    """(job id, created). When an active (queued/running) job exists for (file, step), returns its id
    and created=False instead of inserting, so that a file is never processed twice at once. `backfill_id`: the
    backfill or import queueing it (store/backfills.py).
    `available_since` (default: now) places it in the queue, which claims the longest available first. The job
    keeps the current trace context (the request's or the job's that queues it), for its run to continue."""
    _check_lane(lane)
    new_id = uuid.uuid4()
    payload_json, traceparent = json.dumps(dict(payload or {})), _traceparent()
    rows = await JobTable.raw(
        _ENQUEUE,
        new_id,
        file_id,
        tenant_id,
        step,
        lane,
        max_attempts,
        payload_json,
        traceparent,
        available_since,
        backfill_id,
    )
    return rows[0]["id"], rows[0]["id"] == new_id


def _traceparent() -> str | None:
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers.get("traceparent")


async def claim(worker_id: str, lane: str, limit: int, lease_seconds: float, steps: Collection[str]) -> list[Job]:
    """Up to `limit` jobs of the lane, now leased to this worker: first those of crashed workers
    (expired leases, a new attempt each; a job out of attempts fails instead), then available queued ones, in
    turn across tenants (the tenant with the fewest running and waiting before goes first) and oldest first
    within a tenant. SKIP LOCKED keeps concurrent claimers apart without waiting."""
    _check_lane(lane)
    lease = float(lease_seconds)
    async with _transaction():
        await JobTable.raw(_FAIL_LOST, lane)
        names = list(steps)
        rows = await JobTable.raw(_RECLAIM_EXPIRED, lane, names, limit, worker_id, lease)
        if len(rows) < limit:
            rows += await JobTable.raw(_CLAIM_QUEUED, lane, lane, names, limit - len(rows), worker_id, lease)
    rows.sort(key=lambda row: (row["available_at"], row["created_at"]))
    return [_job(row) for row in rows]


async def add_task_id(job_id: uuid.UUID, worker_id: str, task_id: str) -> None:
    """Record the Ray task of the current attempt (kept for every attempt: the processing ids)."""
    await JobTable.raw(_ADD_TASK_ID, task_id, job_id, worker_id)


async def extend_leases(job_ids: Collection[uuid.UUID], worker_id: str, lease_seconds: float) -> set[uuid.UUID]:
    """Heartbeat; returns the ids still held by this worker (a job whose lease was lost is not)."""
    if not job_ids:
        return set()
    rows = await JobTable.raw(_EXTEND, float(lease_seconds), list(job_ids), worker_id)
    return {row["id"] for row in rows}


async def complete(
    job_id: uuid.UUID,
    worker_id: str,
    file_changes: Mapping[str, Any] | None = None,
    *,
    also: Callable[[], Awaitable[None]] | None = None,
    follow_ups: Sequence[str] = (),
) -> bool:
    """Mark the job completed, store its step's results (`also`: the step's save), apply its results to the file
    row and queue its follow-up steps in the job's lane and backfill (none for a file of a cancelled upload
    session), all in one transaction; False, with nothing applied, when this worker no longer holds the job
    (another attempt owns the results). Whatever `also` raises rolls all of it back and propagates. Follow-ups
    keep the job's place in the queue (its `available_at`): a file under way finishes before files queued after it
    start, so one file's model steps run beside the next file's Ray task instead of waiting behind a whole backlog
    of them."""
    changes = _file_changes(file_changes)
    async with _transaction():
        rows = await JobTable.raw(_COMPLETE, job_id, worker_id)
        if not rows:
            return False
        job = rows[0]
        # The step's own writes come before the file row's: a lock they take (store/model_state.hold_models) is
        # then never requested while this transaction holds a row that its holder may be waiting for.
        if also is not None:
            await also()
        await _apply_file_changes(job["file_id"], changes)
        if follow_ups and await sessions.in_cancelled_session(job["file_id"]):
            await sessions.skip_unstarted([job["file_id"]], datetime.now(UTC))
            follow_ups = ()
        for step in follow_ups:
            await enqueue(
                job["file_id"],
                job["tenant"],
                step,
                lane=job["lane"],
                available_since=job["available_at"],
                backfill_id=job["backfill_id"],
            )
        await sessions.announce(job["file_id"], job["step"], "completed")
    return True


async def fail(
    job_id: uuid.UUID,
    worker_id: str,
    error: str,
    *,
    retryable: bool = True,
    final_file_changes: Mapping[str, Any] | None = None,
    on_final: Callable[[], Awaitable[None]] | None = None,
    backoff_base_seconds: float = 2.0,
    backoff_max_seconds: float = 300.0,
) -> str:
    """After a failed attempt: 'retrying' (queued again after an exponential backoff with jitter),
    'failed' (out of attempts or not retryable; `final_file_changes` applied to the file row and `on_final`
    run in the same transaction), or 'lost' when this worker no longer holds the job."""
    changes = _file_changes(final_file_changes)
    async with _transaction():
        rows = await JobTable.raw(_LOCK_HELD, job_id, worker_id)
        if not rows:
            return "lost"
        job = rows[0]
        if retryable and job["attempts"] < job["max_attempts"]:
            delay = min(backoff_max_seconds, backoff_base_seconds * 2 ** (job["attempts"] - 1))
            # Jitter spreads the retries of jobs that failed together (a model server restarting).
            await JobTable.raw(_RETRY, error, delay * random.uniform(1.0, 1.1), job_id)
            return "retrying"
        await JobTable.raw(_FAIL, error, job_id)
        await _apply_file_changes(job["file_id"], changes)
        if on_final is not None:
            await on_final()
        await sessions.announce(job["file_id"], job["step"], "failed")
    return "failed"


async def release(job_ids: Collection[uuid.UUID], worker_id: str) -> int:
    """Graceful shutdown: give this worker's running jobs back to the queue at once, as if never
    claimed, rather than making them wait for their leases to expire."""
    if not job_ids:
        return 0
    rows = await JobTable.raw(_RELEASE, list(job_ids), worker_id)
    return len(rows)


async def cancel_for_file(file_id: uuid.UUID) -> int:
    """Cancel the file's queued jobs; running ones are left to finish (their results stay valid)."""
    rows = await JobTable.raw(_CANCEL, file_id)
    return len(rows)


async def jobs_of_file(file_id: uuid.UUID) -> list[JobRow]:
    """Every job of the file, oldest first (for the status endpoints)."""
    return (await jobs_of_files([file_id]))[file_id]


async def jobs_of_files(file_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[JobRow]]:
    """Every job of each file, oldest first, in one query (status listings of many files)."""
    grouped: dict[uuid.UUID, list[JobRow]] = {file_id: [] for file_id in file_ids}
    if not grouped:
        return grouped
    rows = (
        await JobTable.select()
        .where(JobTable.file_id.is_in(list(grouped)))
        .order_by(JobTable.created_at)
        .order_by(JobTable.id)
        .output(load_json=True)
    )
    for row in as_rows(JobRow, rows):
        grouped[row.file_id].append(row)
    return grouped


def _job_row(record: Mapping[str, Any] | None) -> JobRow | None:
    return None if record is None else as_row(JobRow, record)


async def active_job(file_id: uuid.UUID, step: str) -> JobRow | None:
    """The queued or running job of the file for that step, if any (there is at most one)."""
    return _job_row(
        await JobTable.select()
        .where((JobTable.file_id == file_id) & (JobTable.step == step) & JobTable.status.is_in(list(ACTIVE)))
        .output(load_json=True)
        .first()
    )


async def lane_counts() -> dict[str, dict[str, int]]:
    """{lane: {status: count}} with zeros included, so that monitoring sees every series."""
    counts = {lane: dict.fromkeys(STATUSES, 0) for lane in LANES}
    for row in await JobTable.raw(_COUNTS):
        counts[row["lane"]][row["status"]] = row["n"]
    return counts


async def job_of_tenant(tenant_id: uuid.UUID, job_id: uuid.UUID) -> JobRow | None:
    """The job when it is the tenant's (another tenant's job does not exist for it)."""
    return _job_row(
        await JobTable.select()
        .where((JobTable.id == job_id) & (JobTable.tenant == tenant_id))
        .output(load_json=True)
        .first()
    )


async def latest_job(file_id: uuid.UUID, step: str) -> JobRow | None:
    """The file's newest job for that step, whatever its status."""
    return _job_row(
        await JobTable.select()
        .where((JobTable.file_id == file_id) & (JobTable.step == step))
        .order_by(JobTable.created_at, ascending=False)
        .output(load_json=True)
        .first()
    )
