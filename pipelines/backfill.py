"""Re-running a processing step over a selection of files: what `scopix backfill` drives.

A backfill is durable jobs of the step in the backfill lane (store/backfills.py), so the engines that process
uploads do its work on the cluster's Ray tasks and model actors, with the interactive lane ahead of it by
construction (pipelines/engine/runner.py). The driver queues the selection in keyset batches, keeping about two
batches ahead of the engines rather than the whole selection at once, each batch checkpointed with its cursor:
an interrupted driver resumes where its last batch committed, and a cancelled backfill leaves few jobs to cancel.
Which steps exist, and which media types each applies to, come from the catalog.

Not a Ray Data pipeline: a dataset's blocks are neither durable nor idempotent per file, would need a second
priority scheme beside the engine's lanes, and would call the same model actors anyway; the durable jobs give
resume, cancel, exactly-once saves and the interactive lane's priority with no second path (benchmarks/backfill.py
measures what that costs against a bare process pool).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec

from models.registry import ModelUnavailable, resolve
from pipelines.catalog import media_types_of, steps_by_media
from pipelines.inference.in_use import models_to_fill
from pipelines.inference.swap import SWAPS
from store import backfills, model_state
from store.backfills import Backfill, Selection
from store.errors import InvalidInput, NotFound
from store.settings import Settings
from store.tenants import find_tenant

DONE = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class Request:
    """What an operator asks for (`scopix backfill STEP ...`)."""

    step: str
    model: str | None = None
    tenant: str | None = None  # a tenant's name or id
    media_types: Sequence[str] = ()  # default: every media type the step applies to
    since: datetime | None = None
    until: datetime | None = None
    only: str = "missing"
    limit: int | None = None


@dataclass(frozen=True)
class Progress:
    """Where a backfill stands: files selected so far (and expected in all), jobs done of those it queued, and
    the rate of this driver's run."""

    backfill: Backfill
    jobs: dict[str, int]
    expected: int
    rate: float  # jobs done per second since this driver started

    @property
    def done(self) -> int:
        return sum(self.jobs.get(status, 0) for status in DONE)

    @property
    def total(self) -> int:
        """The jobs it will have queued: known once the selection is queued, estimated before."""
        queued = sum(self.jobs.values())
        if self.backfill.enqueued_at is not None:
            return queued
        return max(self.expected - int(self.backfill.counts.get("under_way", 0)), queued)

    @property
    def eta_seconds(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None


def step_names(settings: Settings) -> list[str]:
    return sorted({name for steps in steps_by_media(settings).values() for name in steps})


async def selection_of(settings: Settings, request: Request) -> Selection:
    """The request checked against the catalog, the tenants and the models in use."""
    catalog = steps_by_media(settings)
    applies = media_types_of(catalog, request.step)
    if not applies:
        raise InvalidInput(f"unknown step {request.step!r}; one of {', '.join(step_names(settings))}", field="step")
    unknown = sorted(set(request.media_types) - set(applies))
    if unknown:
        raise InvalidInput(f"{request.step} applies to {', '.join(applies)} files only", field="media_type")
    if request.only not in backfills.ONLY:
        raise InvalidInput(f"one of {', '.join(backfills.ONLY)}", field="only")
    if request.limit is not None and request.limit < 1:
        raise InvalidInput("must be at least 1", field="limit")
    if request.since and request.until and request.since >= request.until:
        raise InvalidInput("must be after --since", field="until")
    step = catalog[applies[0]][request.step]
    tenant = None if request.tenant is None else (await find_tenant(request.tenant)).id
    return Selection(
        media_types=tuple(request.media_types) or applies,
        component=step.component,
        error_column=step.error_column,
        tenant_id=tenant,
        since=request.since,
        until=request.until,
        only=request.only,
        limit=request.limit,
        model=None if request.model is None else await _model_in_use(settings, request.step, request.model),
    )


async def _model_in_use(settings: Settings, step: str, model: str) -> str:
    """A step fills the outputs of the models its task uses now; another model is a swap, which backfills too."""
    task = next((task for task, swap in SWAPS.items() if swap.step == step), None)
    if task is None:
        raise InvalidInput(f"the {step} step has no model to choose; omit --model", field="model")
    try:
        model_id = resolve(task, model).model_id
    except ModelUnavailable as error:
        raise InvalidInput(str(error), field="model") from error
    if model_id not in await models_to_fill(settings, task):
        raise InvalidInput(
            f"{model_id} is not the {task} model in use; `scopix models activate {task} {model}` swaps to it, "
            "backfilling its outputs for every file",
            field="model",
        )
    return model_id


async def start(settings: Settings, request: Request) -> Backfill:
    selection = await selection_of(settings, request)
    backfill = await backfills.create("backfill", request.step, msgspec.to_builtins(selection))
    expected = await backfills.count(selection)
    await backfills.checkpoint(backfill.id, None, {"expected": expected}, enqueued=False)
    found = await backfills.get(backfill.id)
    assert found is not None
    return found


async def resume(backfill_id: uuid.UUID) -> Backfill:
    found = await backfills.get(backfill_id)
    if found is None:
        raise NotFound(f"no backfill {backfill_id}")
    if found.status != "running":
        raise InvalidInput(f"backfill {backfill_id} is {found.status}; only a running one resumes", field="resume")
    if found.kind == "swap":
        raise InvalidInput("a model swap's backfill is carried on by the engines; nothing to resume", field="resume")
    return found


async def cancel(backfill_id: uuid.UUID) -> int:
    """Cancel a running backfill, import or model swap (which gives the swap up: the active model stays); how many
    queued jobs were cancelled."""
    found = await backfills.get(backfill_id)
    if found is not None and found.kind == "swap" and found.status == "running":
        await model_state.cancel_swap(str(found.selection["task"]))
        return await backfills.cancel_jobs(backfill_id)
    cancelled = await backfills.cancel(backfill_id)
    if cancelled is None:
        raise NotFound(f"no running backfill {backfill_id}")
    return cancelled


async def next_batch(backfill: Backfill, size: int) -> Backfill:
    return await backfills.queue_batch(backfill, backfill.step, size)


async def drive(
    backfill: Backfill,
    queue: Callable[[Backfill], Awaitable[Backfill]],
    watch: Callable[[Progress], None],
    *,
    ahead: int,
    poll_seconds: float = 0.5,
) -> Backfill:
    """Queue the selection with `queue` (one checkpointed batch a call) while fewer than `ahead` of its jobs wait,
    until all of it is queued and its jobs are done, or it is cancelled (by anyone); `watch` sees its progress at
    each look. Returns its last row."""
    started, done_before = time.monotonic(), None
    while True:
        jobs = await backfills.job_counts(backfill.id)
        done = sum(jobs.get(status, 0) for status in DONE)
        done_before = done if done_before is None else done_before
        rate = (done - done_before) / max(time.monotonic() - started, 1e-9)
        watch(Progress(backfill, jobs, int(backfill.counts.get("expected", 0)), rate))
        if backfill.status != "running":
            return backfill
        if backfill.enqueued_at is None and jobs.get("queued", 0) < ahead:
            backfill = await queue(backfill)
            continue
        if backfill.enqueued_at is not None and await backfills.finish(backfill.id):
            poll_seconds = 0.0
        await asyncio.sleep(poll_seconds)
        refreshed = await backfills.get(backfill.id)
        assert refreshed is not None
        backfill = refreshed
