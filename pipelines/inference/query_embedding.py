"""A search query's vector: the API's way to the shared text-embedding model actor.

The API connects to Ray on the first query rather than at start-up, so an API that runs no processing still
starts in a second; the embedder actor is the one the job worker embeds chunks with (same name, same model),
and a query waits in its interactive lane, ahead of document chunks. The model is the task's active one, read
per query (models_in_use: at most half a second stale), so a swap's flip moves searches to the new space.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from cluster.model_clients import EmbedderClient
from cluster.model_pool import InferenceUnavailable
from cluster.runtime import ensure_ray
from models.registry import ModelUnavailable, Task
from pipelines.inference.clients import ModelClients
from pipelines.inference.configured import text_embedders
from pipelines.inference.in_use import active_model
from store.errors import Misconfigured, Unavailable
from store.settings import Settings


@dataclass(frozen=True)
class QueryVector:
    """A query embedded in one model's space: search that space, and only that one."""

    model_id: str
    dimension: int
    vector: np.ndarray


class QueryEmbedder:
    """One per API process; `embed` raises store.errors.Misconfigured when the active model is not on this machine,
    Unavailable when no embedder can serve now."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._embedders: ModelClients[EmbedderClient] | None = None
        self._connecting = asyncio.Lock()

    async def embed(self, text: str) -> QueryVector:
        try:
            spec = await active_model(self._settings, Task.EMBED_TEXT)
        except ModelUnavailable as error:
            raise Misconfigured(f"the text embedder: {error}") from error
        try:
            rows = await (await self._connected()).get(spec.model_id).embed([text], lane="interactive", role="query")
        except InferenceUnavailable as error:
            raise Unavailable(f"the text embedder cannot serve now: {error}", code="embedder_unavailable") from error
        return QueryVector(spec.model_id, int(rows.shape[1]), rows[0])

    async def close(self) -> None:
        """Wait for actor replacements in flight; the actors themselves are shared, so they stay."""
        if self._embedders is not None:
            await self._embedders.close()

    async def _connected(self) -> ModelClients[EmbedderClient]:
        async with self._connecting:
            if self._embedders is None:
                settings = self._settings
                try:  # ensure_ray returns at once when this process already joined Ray (the engine did)
                    await asyncio.to_thread(ensure_ray, settings.engine.ray_address, settings.engine.ray_num_cpus)
                except (ConnectionError, RuntimeError, TimeoutError) as error:
                    raise InferenceUnavailable(f"cannot reach the Ray cluster: {error}") from error
                self._embedders = text_embedders(settings)
            return self._embedders
