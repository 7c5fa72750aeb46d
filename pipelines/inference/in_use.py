"""Which model is active per task, for readers of stored model outputs (a chunk's vector lives in its model's space,
so reading one means naming the model), and which models a writer fills during a swap. The active model is the
one the database records (store/model_state.py, set by `scopix models activate`), else the one the settings
name. Resolving reads no weights and imports no torch.
"""

from __future__ import annotations

import time
from functools import cache

from models.registry import ModelSpec, ModelUnavailable, Task, resolve
from store import model_state
from store.errors import Misconfigured
from store.model_state import ModelState
from store.settings import Settings

# Readers may use the previous model this long after a flip: a search reads one tiny row at most this often.
STATE_TTL_SECONDS = 0.5

_states: dict[Task, tuple[float, ModelState | None]] = {}


def configured_model(settings: Settings, task: Task) -> str | None:
    """The model the settings name for the task (`SCOPIX_MODELS__<TASK>__MODEL`); None: the task's default."""
    configured = settings.models.task(task)
    return configured.model if configured else None


async def active_model(settings: Settings, task: Task, *, fresh: bool = False) -> ModelSpec:
    """The task's active model, from a state at most STATE_TTL_SECONDS old unless `fresh`; raises ModelUnavailable
    when this machine cannot provide it."""
    state = await _state(task, fresh)
    return _resolved(task, state.active_model_id if state else configured_model(settings, task))


async def serving_text_model(settings: Settings) -> ModelSpec:
    """The active `embed_text` model: the space of chunk vectors a request reads."""
    return await serving_model(settings, Task.EMBED_TEXT)


async def serving_image_model(settings: Settings) -> ModelSpec:
    """The active `embed_image` model: the space `/similar` searches."""
    return await serving_model(settings, Task.EMBED_IMAGE)


async def serving_model(settings: Settings, task: Task, *, fresh: bool = False) -> ModelSpec:
    """The task's active model (as active_model reads it); Misconfigured when this machine cannot provide it."""
    try:
        return await active_model(settings, task, fresh=fresh)
    except ModelUnavailable as error:
        raise Misconfigured(f"the active {task} model: {error}") from error


async def models_to_fill(settings: Settings, task: Task) -> list[str]:
    """The models whose spaces a new output goes to, read now: the target of a swap in progress first, then the
    active one. Target first, so that a file never has the active model's outputs without the target's for longer
    than one model call, and a backfill never waits on a file that is being embedded anyway."""
    state = await _state(task, fresh=True)
    if state is None:
        return [_resolved(task, configured_model(settings, task)).model_id]
    return [model for model in (state.target_model_id, state.active_model_id) if model]


async def _state(task: Task, fresh: bool) -> ModelState | None:
    now = time.monotonic()
    cached = _states.get(task)
    if fresh or cached is None or cached[0] <= now:
        cached = (now + STATE_TTL_SECONDS, await model_state.get(task.value))
        _states[task] = cached
    return cached[1]


@cache
def _resolved(task: Task, model: str | None) -> ModelSpec:
    """A model's files do not move during a process's life, so one resolution (a package or cache lookup) serves
    all."""
    return resolve(task, model)
