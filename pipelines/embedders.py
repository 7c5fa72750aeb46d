"""The text-embedding clients of one process, one per model: during a swap the active and the target model are
both in use, and which one is active can change between two requests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cluster.actors import EmbedderClient
from store.settings import Settings


class TextEmbedders:
    """`get(model_id)` builds a model's client on first use (no Ray call until it embeds) and keeps it, so each
    model's actor is found once and its requests are coalesced per process."""

    def __init__(self, settings: Settings, make: Callable[[str], EmbedderClient]) -> None:
        self.settings = settings  # whose models are active, when the database names none
        self._make = make
        self._clients: dict[str, EmbedderClient] = {}

    def get(self, model_id: str) -> EmbedderClient:
        client = self._clients.get(model_id)
        if client is None:
            client = self._clients[model_id] = self._make(model_id)
        return client

    async def close(self) -> None:
        """Wait for actor replacements in flight; the actors themselves are shared, so they stay."""
        await asyncio.gather(*(client.close() for client in self._clients.values()))
