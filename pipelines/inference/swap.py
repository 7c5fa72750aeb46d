"""Swapping a task's model without downtime: what `scopix models` does, and the engine's upkeep that finishes it.

`activate` records the new model as the task's target and queues, in the backfill lane, the step that fills a
file's outputs for every file that has outputs of the active model only; it returns at once. Engines run the
jobs; every engine's upkeep (`SwapKeeper`) flips the target to active once nothing is left, and queues again
what a job missed (a document whose job started before the swap did). Meanwhile readers use the active model
only (models_in_use), and writers fill both spaces, so uploads during the swap are never left behind. All of
it is derived from the database, so a restart in the middle simply carries on.

A task can be swapped once its step fills the outputs of every model in use (ModelClients.in_use, still_in_use)
and its outputs are a kind of store/model_state.SPACES: `SWAPS` says which. A flip also makes the files show the new
model's outputs where they show one (a description, the provenance of an embedding), in the same transaction.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from models.registry import ModelUnavailable, Task, resolve, supported
from pipelines.inference.in_use import configured_model, serving_model
from store import ai_outputs, embeddings, model_state
from store.errors import InvalidInput, Misconfigured, Unavailable
from store.model_state import Adopt, ModelState, Progress
from store.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Swap:
    table: str  # where the task's outputs live, one space per model (store/model_state.SPACES)
    step: str  # the step that fills a file's outputs for the models in use
    adopt: Adopt | None = None  # what the flip changes on the files besides the active model
    # Further tables of spaces of the task's models that `step` fills with `table`'s, in the same transaction (so
    # they are complete when `table`'s is): their spaces are made with the swap's and pruned with them.
    also: tuple[str, ...] = ()

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.table, *self.also)


async def _show_descriptions(model_id: str, revision: str | None) -> None:
    await ai_outputs.show_descriptions_of(model_id)  # each description carries its own revision


SWAPS: dict[Task, Swap] = {
    Task.EMBED_TEXT: Swap(embeddings.CHUNKS, "embed_chunks"),
    # A video's frames (embedded with its thumbnail: pipelines/image/embedding.py).
    Task.EMBED_IMAGE: Swap(
        embeddings.IMAGES, "embed_image", ai_outputs.show_image_embeddings_of, also=(embeddings.FRAMES,)
    ),
    Task.DESCRIBE: Swap(model_state.DESCRIPTIONS, "describe", _show_descriptions),
}


@dataclass(frozen=True)
class Activation:
    task: Task
    model_id: str
    outcome: str  # "started" (a backfill), "flipped" (nothing to backfill), "already_active", "cancelled"
    queued: int = 0  # files queued for the backfill
    cancelled: str | None = None  # the target given up for the model already active


@dataclass(frozen=True)
class SwapStatus:
    task: Task
    active: str | None  # model id; None: the task has no model
    target: str | None
    progress: Progress | None  # while a swap is in progress


@dataclass(frozen=True)
class ModelAvailability:
    model_id: str
    available: bool  # this machine has its files (resolve succeeds)
    reason: str | None = None


@dataclass(frozen=True)
class TaskModels:
    task: Task
    swappable: bool
    active: str | None  # None: no model (a task without a default, not configured)
    active_from: str  # "database" (a swap made it active) or "settings"
    target: str | None
    models: list[ModelAvailability]  # registered, active, target and configured ones


def parse_task(name: str) -> Task:
    try:
        return Task(name)
    except ValueError:
        raise InvalidInput(f"unknown task {name!r}; one of {', '.join(Task)}", field="task") from None


def _swap(task: Task) -> Swap:
    swap = SWAPS.get(task)
    if swap is None:
        raise InvalidInput(
            f"swapping the {task} model is not supported yet (only {', '.join(SWAPS)}); set "
            f"SCOPIX_MODELS__{task.upper()}__MODEL and restart instead",
            field="task",
        )
    return swap


async def activate(settings: Settings, task: Task, model: str) -> Activation:
    """Start the swap of the task's model to `model` (a registered id, a local directory or a cached hub id).
    Activating the active model gives up a swap in progress."""
    swap = _swap(task)
    try:
        spec = resolve(task, model)
    except ModelUnavailable as error:
        raise Unavailable(str(error), code="model_unavailable") from error
    active = await serving_model(settings, task, fresh=True)
    if spec.model_id == active.model_id:
        cancelled = await model_state.cancel_swap(task.value)
        return Activation(task, spec.model_id, "cancelled" if cancelled else "already_active", cancelled=cancelled)
    for table in swap.tables:
        if table not in embeddings.KEYS:
            continue
        try:
            await embeddings.ensure_space(spec.model_id, spec.vector_dimension, table)
        except ValueError as error:  # a space of that name with another dimension
            raise InvalidInput(str(error), field="model") from error
    state, queued = await model_state.start_swap(
        task.value, swap.table, swap.step, (active.model_id, active.revision), (spec.model_id, spec.revision)
    )
    # Nothing to backfill: it flips now, here or in an engine's upkeep that came first.
    flipped = (
        await model_state.flip(task.value, swap.table, spec.model_id, swap.adopt)
        or (await serving_model(settings, task, fresh=True)).model_id == spec.model_id
    )
    log.info("%s: swap from %s to %s, %d files queued", task, state.active_model_id, spec.model_id, queued)
    return Activation(task, spec.model_id, "flipped" if flipped else "started", queued)


async def status(settings: Settings, task: Task | None = None) -> list[SwapStatus]:
    """Each swappable task's (or the one task's) active model and the progress of a swap in progress."""
    tasks = [task] if task is not None else list(SWAPS)
    found: list[SwapStatus] = []
    for each in tasks:
        state = await model_state.get(each.value)
        if state is None or state.target_model_id is None:
            active = state.active_model_id if state else await _settings_model(settings, each)
            found.append(SwapStatus(each, active, None, None))
            continue
        swap = _swap(each)
        progress = await model_state.progress(
            swap.table, state.active_model_id, state.target_model_id, swap.step, _started(state)
        )
        found.append(SwapStatus(each, state.active_model_id, state.target_model_id, progress))
    return found


async def _settings_model(settings: Settings, task: Task) -> str | None:
    """The model the settings make active; None when there is none (a task without a default, not configured)."""
    try:
        return (await serving_model(settings, task, fresh=True)).model_id
    except Misconfigured:
        return None


def _started(state: ModelState) -> datetime:
    assert state.backfill_started_at is not None  # a target always comes with its start (a CHECK says so)
    return state.backfill_started_at


async def prune(settings: Settings, task: Task) -> dict[str, int]:
    """Drop the spaces of the task's models that are neither active nor target; rows deleted per model (in all of
    the task's tables)."""
    swap = _swap(task)
    state = await model_state.get(task.value)
    settings_model = state.active_model_id if state else (await serving_model(settings, task, fresh=True)).model_id
    dropped: dict[str, int] = {}
    for table in swap.tables:
        for model_id, rows in (await model_state.prune(task.value, table, settings_model)).items():
            dropped[model_id] = dropped.get(model_id, 0) + rows
    return dropped


async def models(settings: Settings) -> list[TaskModels]:
    """Per task: the registered models, the active one (and where that is decided), the target, and which of them
    this machine can load."""
    states = {state.task: state for state in await model_state.states()}
    listed: list[TaskModels] = []
    for task in Task:
        state = states.get(task.value)
        configured = configured_model(settings, task)
        if state is not None:
            active: str | None = state.active_model_id
        else:
            try:
                active = resolve(task, configured).model_id
            except ModelUnavailable:
                active = configured
        target = state.target_model_id if state else None
        names = dict.fromkeys(m for m in (*supported(task), active, target, configured) if m)
        listed.append(
            TaskModels(
                task,
                task in SWAPS,
                active,
                "database" if state else "settings",
                target,
                [_availability(task, name) for name in names],
            )
        )
    return listed


def _availability(task: Task, model: str) -> ModelAvailability:
    try:
        spec = resolve(task, model)
    except ModelUnavailable as error:
        return ModelAvailability(model, False, str(error))
    return ModelAvailability(spec.model_id, True)


class SwapKeeper:
    """An engine's upkeep: for each swap in progress whose backfill jobs are done, flip it, or queue what is
    left. A swap whose files left are all failed ones is looked at again only every `stuck_recheck_seconds`,
    since each look reads the whole active space; activating again retries them."""

    def __init__(self, stuck_recheck_seconds: float = 30.0) -> None:
        self._stuck_recheck_seconds = stuck_recheck_seconds
        self._stuck: dict[tuple[str, datetime], float] = {}  # (task, backfill start) -> next look

    async def __call__(self) -> None:
        for state in await model_state.swapping():
            swap = SWAPS.get(Task(state.task))
            if swap is not None and self._stuck.get((state.task, _started(state)), 0.0) <= time.monotonic():
                await self._advance(state, swap)

    async def _advance(self, state: ModelState, swap: Swap) -> None:
        target = state.target_model_id
        assert target is not None  # swapping() returns swaps in progress
        if await model_state.backfill_pending(swap.step, target):
            return
        if await model_state.flip(state.task, swap.table, target, swap.adopt):
            log.info("%s: %s is the active model now", state.task, target)
            return
        queued = await model_state.queue_backfill(state, swap.table, swap.step)
        if queued:
            log.info("%s: %d more files queued for %s", state.task, queued, target)
            return
        progress = await model_state.progress(swap.table, state.active_model_id, target, swap.step, _started(state))
        if progress.remaining and progress.failed == progress.remaining:
            log.warning("%s: the swap to %s waits on %d files whose jobs failed", state.task, target, progress.failed)
            self._stuck[(state.task, _started(state))] = time.monotonic() + self._stuck_recheck_seconds
