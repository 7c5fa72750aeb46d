"""The model clients of one task in one process, one per model: during a swap the active and the target model are
both in use, and which one is active can change between two requests. Steps fill every model in use through
`fill`, so a file processed during a swap is never left behind by the flip."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from cluster.model_pool import ModelPool
from models.registry import Task
from pipelines.inference.in_use import models_to_fill
from store.settings import Settings

Client = TypeVar("Client", bound=ModelPool)
Output = TypeVar("Output")


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

    async def fill(self, fill: Callable[[Client, bool], Awaitable[Output]]) -> dict[str, Output]:
        """`fill(client, swapping)` with each model in use, target first (models_in_use.models_to_fill); the models
        are read again once they are filled, and any that a swap started or flipped meanwhile are filled too, so the
        outputs exist in every space in use when this returns. `swapping` says more than one model is in use: a
        step then keeps a model's existing output rather than computing it again (a backfill job fills the target
        only). Returns each model's output by model id."""
        filled: dict[str, Output] = {}
        while wanted := [m for m in await models_to_fill(self.settings, self.task) if m not in filled]:
            swapping = len(wanted) + len(filled) > 1
            for model_id in wanted:
                filled[model_id] = await fill(self.get(model_id), swapping)
        return filled

    async def close(self, kill: bool = False) -> None:
        """Wait for actor replacements in flight; the actors are shared, so they stay unless `kill` (tests)."""
        await asyncio.gather(*(client.close(kill) for client in self._clients.values()))
