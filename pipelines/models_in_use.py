"""Which model the settings make active per task, for readers of stored model outputs (a chunk's vector lives
in its model's space, so reading one means naming the model). Resolving reads no weights and imports no torch.
"""

from __future__ import annotations

from functools import cache

from models.registry import ModelSpec, ModelUnavailable, Task, resolve
from store.errors import Unavailable
from store.settings import Settings


def active_text_model(settings: Settings) -> ModelSpec:
    """The active `embed_text` model; Unavailable when the settings name one this machine cannot provide."""
    try:
        return _resolved(Task.EMBED_TEXT, settings.embed_text_model)
    except ModelUnavailable as error:
        raise Unavailable(str(error), code="model_unavailable") from error


@cache
def _resolved(task: Task, model: str | None) -> ModelSpec:
    """Settings are frozen for a process's life, so one resolution (a package or cache lookup) serves all."""
    return resolve(task, model)
