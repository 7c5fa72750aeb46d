"""What a processing step is, in one shape for every step:

- `load(file) -> inputs`: reads what the work needs (rows, bytes from S3, which models are in use); async, no
  writes beyond idempotent set-up (a model's embedding space). Nothing at all for a Ray task, which reads its bytes
  near the worker: its inputs are the file itself.
- `run(inputs) -> result`: the work, and nothing else: a Ray task (`RayTask`, CPU work near the bytes) or
  model-actor calls in the engine's process (`InProcess`). The engine calls both the same way.
- `save(file, result)`: database writes only, made inside the transaction that completes the job, together with
  the file's columns and the follow-up jobs. A crash anywhere before that commit leaves nothing of the attempt: the
  job is retried; after it, the job is completed with all its outputs.

Each Ray task and each model call of a run has the engine's time limit, and each Ray task its memory limit, held
where it runs (`run_task`, `in_time`, cluster/limits.py): past either, the step fails for good with the reason.

A step also names the component statuses it drives, the result keys that become file columns, the steps that
follow it, and what happens to the file when it fails for good.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from cluster.limits import OverLimit
from cluster.model_actor import Lane
from cluster.tasks import cancel, submit, task_id
from store.step_objects import S3Location

Result = Mapping[str, Any]
T = TypeVar("T")


# The model-actor lane of the job being run (set by the engine): an upload's job calls an actor that serves no search
# queries (OCR, image embedding, description) in its first lane, so that a backfill's queued calls never hold it
# back; every other call goes to the batch lane.
JOB_LANE: ContextVar[Lane] = ContextVar("job_lane", default="batch")


def files_lane() -> Lane:
    """The lane for a call made by the running job to an actor that serves files only."""
    return JOB_LANE.get()


class StepFailed(Exception):
    """A failure that retrying cannot fix (corrupt input, a decompression bomb, a step past its limits): fail at
    once; str(exc) is the reason users see."""


class Outdated(Exception):
    """What the step loaded changed before its save could commit (a model swap started, flipped or was given up):
    its result no longer covers what the file needs. The engine loads and runs it again, in the same attempt."""


@dataclass(frozen=True)
class FileRef:
    """What a step knows of its file: plain values, cheap to send to a Ray worker."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    object_key: str
    media_type: str
    content_type: str
    document_type: str | None = None


@dataclass(frozen=True)
class RunContext:
    """What the engine gives a run: where the bytes are, the step's name, a way to record a Ray task's id (the
    processing ids the API reports), and its limits: the time each of its Ray tasks and model calls may take
    (seconds) and the memory its Ray tasks may take (MiB); None: no limit."""

    location: S3Location
    name: str
    started_task: Callable[[str], Awaitable[None]]
    seconds: float | None = None
    memory_mib: int | None = None


class Runner(Protocol):
    async def __call__(self, inputs: Any, context: RunContext) -> Result: ...


@dataclass(frozen=True)
class RayTask:
    """CPU work as a Ray task, `function(location, inputs, *args)`: bytes travel by S3 key, only small facts come
    back. `args` are options, picklable. Cancelling the run cancels the task."""

    function: Callable[..., Result]
    args: tuple[Any, ...] = ()
    num_cpus: float = 1.0

    async def __call__(self, inputs: Any, context: RunContext) -> Result:
        return await run_task(context, self.function, context.location, inputs, *self.args, num_cpus=self.num_cpus)


async def run_task(context: RunContext, function: Callable[..., T], *args: Any, num_cpus: float = 1.0) -> T:
    """`function(*args)` as a Ray task of the run, recorded among its task ids, within the run's limits: past its
    time the task is killed, past its memory it fails in its worker; either way StepFailed says which. Cancelling
    the run cancels (kills) the task too."""
    reference = submit(function, *args, num_cpus=num_cpus, name=context.name, memory_mib=context.memory_mib)

    async def result() -> T:
        try:
            await context.started_task(task_id(reference))
            done: T = await reference
        except asyncio.CancelledError:  # the run was cancelled, or its time is up
            cancel(reference)
            raise
        return done

    try:
        return await in_time(context, result())
    except Exception as exc:  # Ray's error, the task's as its cause
        if isinstance(cause := getattr(exc, "cause", exc), OverLimit):
            raise StepFailed(str(cause)) from None
        raise


async def in_time(context: RunContext, work: Awaitable[T]) -> T:
    """`work`, cancelled at the run's time limit: a permanent failure, since the same input would take as long
    again."""
    limit = asyncio.timeout(context.seconds)
    try:
        async with limit:
            return await work
    except TimeoutError:
        if not limit.expired():
            raise
        raise StepFailed(f"{context.name} timed out after {context.seconds:g} s") from None


@dataclass(frozen=True)
class InProcess:
    """Work in the engine's process, `function(inputs)`: a coroutine that calls model actors (the actors do the
    work), with no database access of its own; within the run's time limit."""

    function: Callable[[Any], Awaitable[Result]]

    async def __call__(self, inputs: Any, context: RunContext) -> Result:
        return await in_time(context, self.function(inputs))


async def the_file(file: FileRef) -> FileRef:
    """The load of a step that needs nothing but the file (a Ray task reads its own bytes)."""
    return file


def _no_follow_ups(result: Result) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class Step:
    name: str
    component: str  # the status column this step drives, e.g. "variant_status"
    run: Runner
    load: Callable[[FileRef], Awaitable[Any]] = the_file
    save: Callable[[FileRef, Result], Awaitable[None]] | None = None  # in the transaction that completes the job
    columns: tuple[str, ...] = ()  # result keys written to the file row as they are
    error_column: str = "error_message"
    more_components: tuple[str, ...] = ()  # further status columns it drives (marked with the first)
    failure_extra: Mapping[str, Any] = field(default_factory=dict)  # file columns set when it fails for good
    follow_ups: Callable[[Result], tuple[str, ...]] = _no_follow_ups  # steps queued on completion
    on_failure: Callable[[FileRef], Awaitable[None]] | None = None  # cleanup when it fails for good

    @property
    def components(self) -> tuple[str, ...]:
        return (self.component, *self.more_components)

    def file_changes(self, result: Result) -> dict[str, Any]:
        return {**dict.fromkeys(self.components, "completed"), **{name: result[name] for name in self.columns}}

    def failure_changes(self, error: str) -> dict[str, Any]:
        return {**dict.fromkeys(self.components, "failed"), self.error_column: error, **self.failure_extra}
