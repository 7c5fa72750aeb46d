"""The model clients of one task in one process, one per model: during a swap the active and the target model are
both in use, and which one is active can change between two requests. A step loads the models in use (`in_use`),
computes an output for each, and its save confirms them in the completing transaction (`still_in_use`), so a file
processed during a swap is never left behind by the flip."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import Generic, TypeVar

from cluster.model_pool import ModelPool
from models.registry import Task
from pipelines.engine.step import Outdated
from pipelines.inference.in_use import models_to_fill
from store import model_state
from store.settings import Settings

Client = TypeVar("Client", bound=ModelPool)


class ModelClients(Generic[Client]):
    """`get(model_id)` builds a model's client on first use (no Ray call until it infers) and keeps it, so each
    model's actor is found once and its requests are coalesced per process."""

    def __init__(self, settings: Settings, task: Task, make: Callable[[str], Client]) -> None:
        self.settings = settings  # whose models are active, when the database names none
        self.task = task
        self._make = make
        self._clients: dict[str, Client] = {}

    def get(self, model_id: str) -> Client:
        client = self._clients.get(model_id)
        if client is None:
            client = self._clients[model_id] = self._make(model_id)
        return client

    async def in_use(self) -> dict[str, Client]:
        """The clients of the models whose spaces a new output goes to, read now: a swap's target first, then the
        active model (models_to_fill). More than one means a swap: a step then keeps a model's existing output
        rather than computing it again (so a backfill job computes the target's only)."""
        return {model_id: self.get(model_id) for model_id in await models_to_fill(self.settings, self.task)}

    async def still_in_use(self, filled: Collection[str]) -> list[str]:
        """In the transaction that saves a step's outputs, before it writes them: the models in use now, which stay
        so until it commits (store/model_state.hold_models). `Outdated` when one of them is not among `filled`, the
        models the step has outputs of: a swap started or flipped after it loaded, and the engine runs it again.

        Why again rather than saving what there is: after a flip the models filled may all be out of use, and
        nothing would ever fill the new active one; a swap that only started would have its backfill cover the
        file (SwapKeeper queues what a job missed), but one rule for both is simpler, and swaps are rare. The lock
        closes the window between this check and the commit: a swap that started there would not see the outputs
        saved (not yet committed) and could flip without them."""
        await model_state.hold_models(self.task.value)
        models = await models_to_fill(self.settings, self.task)
        missing = [model_id for model_id in models if model_id not in filled]
        if missing:
            raise Outdated(f"the {self.task} models in use changed: no output of {', '.join(missing)}")
        return models

    async def close(self, kill: bool = False) -> None:
        """Wait for actor replacements in flight; the actors are shared, so they stay unless `kill` (tests)."""
        await asyncio.gather(*(client.close(kill) for client in self._clients.values()))
