"""The job engine: claims durable jobs from Postgres and runs their steps (pipelines/engine/step.py): load, run (a
Ray task or model-actor calls), then save inside the transaction that completes the job.

Interactive jobs (uploads) are claimed before backfill jobs, and each lane has slots of its own, so a large backlog
never delays a new upload's steps; while they run, the backfill claims nothing new for a few seconds. Leases are
renewed while a step runs; a crashed engine's jobs become claimable when their leases expire; a stopping engine
gives its unfinished jobs back at once. Each `upkeep` coroutine given runs every `upkeep_seconds`, in a loop of its
own (a model swap's flip: pipelines/inference/swap.py; large tenants' search indexes: store/tenant_indexes.py); it
must be safe to run on many engines at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from opentelemetry.trace import SpanKind

from cluster import tracing
from cluster.model_pool import InferenceUnavailable
from pipelines.engine.step import JOB_LANE, FileRef, Outdated, RayTask, RunContext, Step, StepFailed
from store import files, jobs
from store.step_objects import S3Location

log = logging.getLogger(__name__)

# What a job and its file say of a failure that is not the input's (StepFailed) nor a model's (InferenceUnavailable).
INTERNAL_ERROR = "Processing failed with an internal error; the server's log has the details."


@dataclass(frozen=True)
class EngineConfig:
    max_in_flight: int = 4  # interactive jobs at once
    # Backfill jobs at once, beside the interactive ones (default: max_in_flight), so an upload finds room at once.
    backfill_max_in_flight: int | None = None
    # While interactive jobs run here, the backfill claims nothing new for up to this long, leaving the CPUs and
    # the event loop (which may serve the API too) to an upload's steps; past it, under a steady stream of uploads,
    # it goes on one job at a time, so it never stops.
    backfill_pause_seconds: float = 5.0
    # Of those, at most this many run Ray tasks (None: no further limit), so that an upload's task finds a free
    # CPU in Ray's queue; the others wait on model actors, which batch their calls with uploads'.
    backfill_tasks_max_in_flight: int | None = None
    lease_seconds: float = 60.0
    poll_seconds: float = 0.25
    backoff_base_seconds: float = 2.0
    upkeep_seconds: float = 2.0
    # Each Ray task and each model call of a step (pipelines/engine/step.py), and the memory of its Ray tasks (None:
    # none); past either the job fails at once.
    step_seconds: float = 600.0
    step_memory_mib: int | None = 2048


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Engine:
    def __init__(
        self,
        location: S3Location,
        steps: Mapping[str, Step],
        config: EngineConfig | None = None,
        worker_id: str | None = None,
        upkeep: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.location = location
        self.steps = steps
        self.config = config or EngineConfig()
        self.worker_id = worker_id or default_worker_id()
        self.upkeeps = list(upkeep)
        self._running: dict[uuid.UUID, tuple[jobs.Job, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()
        self._paused_since: float | None = None  # when uploads' jobs began to pause the backfill

    def wake(self) -> None:
        """New work was queued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        background = [asyncio.create_task(self._heartbeat(stop))]
        background += [asyncio.create_task(self._keep_up(upkeep, stop)) for upkeep in self.upkeeps]
        try:
            while not stop.is_set():
                try:
                    await self._claim_more()
                except Exception:
                    log.exception("claiming jobs failed; retrying")
                await self._idle(stop)
        finally:
            for task in background:
                task.cancel()
            await self._give_back()

    async def _claim_more(self) -> None:
        """Interactive jobs up to their own limit first, then backfill jobs up to theirs: the lanes never share
        slots, so a backfill running at its width leaves every slot of an upload's steps free; while an upload's
        steps run, the backfill pauses."""
        running = [job for job, _ in self._running.values()]
        lease, steps = self.config.lease_seconds, tuple(self.steps)
        claimed: list[jobs.Job] = []
        interactive_room = self.config.max_in_flight - sum(job.lane != "backfill" for job in running)
        if interactive_room > 0:
            claimed = await jobs.claim(self.worker_id, "interactive", interactive_room, lease, steps)
        backfill = [job.step for job in running if job.lane == "backfill"]
        room = self._backfill_width(uploading=bool(claimed) or len(backfill) < len(running)) - len(backfill)
        tasks_cap = self.config.backfill_tasks_max_in_flight
        if room > 0 and tasks_cap is not None:
            tasks = tuple(name for name, step in self.steps.items() if isinstance(step.run, RayTask))
            task_room = min(room, tasks_cap - sum(1 for name in backfill if name in tasks))
            if task_room > 0:
                found = await jobs.claim(self.worker_id, "backfill", task_room, lease, tasks)
                claimed, room = claimed + found, room - len(found)
            steps = tuple(name for name in steps if name not in tasks)
        if room > 0 and steps:
            claimed += await jobs.claim(self.worker_id, "backfill", room, lease, steps)
        for job in claimed:
            task = asyncio.create_task(self._execute(job))
            self._running[job.id] = (job, task)
            task.add_done_callback(partial(self._finished, job.id))

    def _backfill_width(self, uploading: bool) -> int:
        """How many backfill jobs may run now: all of its slots, none while an upload's jobs run here, and one
        once that pause has lasted `backfill_pause_seconds`."""
        if not uploading:
            self._paused_since = None
            return self.config.backfill_max_in_flight or self.config.max_in_flight
        if self._paused_since is None:
            self._paused_since = time.monotonic()
        return 0 if time.monotonic() - self._paused_since < self.config.backfill_pause_seconds else 1

    def _finished(self, job_id: uuid.UUID, _: asyncio.Task[None]) -> None:
        """The done callback of the job's task."""
        self._running.pop(job_id, None)
        self._wake.set()

    async def _idle(self, stop: asyncio.Event) -> None:
        waiter = asyncio.create_task(stop.wait())
        woken = asyncio.create_task(self._wake.wait())
        await asyncio.wait({waiter, woken}, timeout=self.config.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, woken):
            task.cancel()
        self._wake.clear()

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.config.lease_seconds / 3)
            if self._running:
                renewing = list(self._running)  # jobs claimed or finished meanwhile are no lost leases
                held = await jobs.extend_leases(renewing, self.worker_id, self.config.lease_seconds)
                for job_id in set(renewing) - held:
                    job = self._running.get(job_id)
                    if job is not None and not job[1].done():
                        log.warning("lost the lease of job %s; abandoning it", job_id)
                        job[1].cancel()

    async def _keep_up(self, upkeep: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await upkeep()
            except Exception:
                log.exception("upkeep failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.upkeep_seconds)

    async def _execute(self, job: jobs.Job) -> None:
        """Run the job in a span that continues the trace it was queued in."""
        attributes: dict[str, str | int] = {
            "scopix.job.id": str(job.id),
            "scopix.file.id": str(job.file_id),
            "scopix.tenant.id": str(job.tenant_id),
            "scopix.job.attempt": job.attempts,
        }
        JOB_LANE.set("interactive" if job.lane == "interactive" else "batch")  # this job's task only
        headers = {"traceparent": job.traceparent} if job.traceparent else {}
        with tracing.span_in(headers, f"job {job.step}", attributes, kind=SpanKind.CONSUMER):
            await self._run(job)

    async def _run(self, job: jobs.Job) -> None:
        step = self.steps.get(job.step)
        if step is None:
            error = f"unknown step {job.step!r}"
            tracing.record_outcome(await jobs.fail(job.id, self.worker_id, error, retryable=False), error)
            return
        file: FileRef | None = None
        started_task = partial(jobs.add_task_id, job.id, self.worker_id)
        limits = (self.config.step_seconds, self.config.step_memory_mib)
        context = RunContext(self.location, step.name, started_task, *limits)
        try:
            file = FileRef(**await files.start_processing(job.file_id, step.components, datetime.now(UTC)))
            while (held := await self._attempt(job, step, file, context)) is None:
                log.info("job %s: what %s loaded changed before its save; running it again", job.id, step.name)
            tracing.record_outcome("completed" if held else "lost")
        except Exception as exc:  # a cancelled run (a lost lease, a stop) is no failure: it propagates
            await self._failed(job, step, file, exc)

    async def _attempt(self, job: jobs.Job, step: Step, file: FileRef, context: RunContext) -> bool | None:
        """Load, run, and save with the job's completion; whether this worker still held the job, or None when the
        step's inputs changed before the save (nothing was committed: run it again)."""
        result = await step.run(await step.load(file), context)
        follow_ups = step.follow_ups(result)
        try:
            held = await jobs.complete(
                job.id,
                self.worker_id,
                {**step.file_changes(result), "completed_at": datetime.now(UTC)},
                also=None if step.save is None else partial(step.save, file, result),
                follow_ups=follow_ups,
            )
        except Outdated:
            return None
        if follow_ups:
            self.wake()
        return held

    async def _failed(self, job: jobs.Job, step: Step, file: FileRef | None, exc: Exception) -> None:
        cause = getattr(exc, "cause", None) or exc  # a Ray task's error carries the task's as its cause
        permanent = isinstance(cause, StepFailed)
        message = str(cause) if permanent or isinstance(cause, InferenceUnavailable) else INTERNAL_ERROR
        if message is INTERNAL_ERROR:  # a library's or a client's own words (S3, MuPDF) are for the log only
            log.warning("job %s (%s) attempt %s raised", job.id, step.name, job.attempts, exc_info=exc)
        outcome = await jobs.fail(
            job.id,
            self.worker_id,
            message,
            retryable=not permanent,
            final_file_changes=step.failure_changes(message),
            on_final=None if step.on_failure is None or file is None else partial(step.on_failure, file),
            backoff_base_seconds=self.config.backoff_base_seconds,
        )
        log.log(logging.WARNING if outcome == "failed" else logging.INFO, "job %s %s: %s", job.id, outcome, message)
        tracing.record_outcome(outcome, message)

    async def _give_back(self) -> None:
        """Stop: cancel the steps in flight and return their jobs to the queue."""
        running = dict(self._running)
        for _, task in running.values():
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*(task for _, task in running.values()), return_exceptions=True)
        if running:
            await jobs.release(list(running), self.worker_id)
