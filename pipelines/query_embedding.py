"""A search query's vector: the API's way to the shared text-embedding model actor.

The API connects to Ray on the first query rather than at start-up, so an API that runs no processing still
starts in a second; the embedder actor is the one the job worker embeds chunks with (same name, same model),
and a query waits in its interactive lane, ahead of document chunks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from cluster.actors import EmbedderClient, InferenceUnavailable
from cluster.runtime import ensure_ray
from pipelines.steps import text_embedder
from store.errors import Unavailable
from store.settings import Settings


@dataclass(frozen=True)
class QueryVector:
    """A query embedded in one model's space: search that space, and only that one."""

    model_id: str
    dimension: int
    vector: np.ndarray


class QueryEmbedder:
    """One per API process; `embed` raises store.errors.Unavailable when no embedder can serve."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: EmbedderClient | None = None
        self._connecting = asyncio.Lock()

    async def embed(self, text: str) -> QueryVector:
        try:
            client = await self._connected()
            spec = client.spec
            rows = await client.embed([text], lane="interactive")
        except InferenceUnavailable as error:
            raise Unavailable(f"the text embedder cannot serve now: {error}", code="embedder_unavailable") from error
        return QueryVector(spec.model_id, int(rows.shape[1]), rows[0])

    async def close(self) -> None:
        """Wait for an actor replacement in flight; the actor itself is shared, so it stays."""
        if self._client is not None:
            await self._client.close()

    async def _connected(self) -> EmbedderClient:
        async with self._connecting:
            if self._client is None:
                settings = self._settings
                try:  # ensure_ray returns at once when this process already joined Ray (the engine did)
                    await asyncio.to_thread(ensure_ray, settings.ray_address, settings.ray_num_cpus)
                except (ConnectionError, RuntimeError, TimeoutError) as error:
                    raise InferenceUnavailable(f"cannot reach the Ray cluster: {error}") from error
                self._client = text_embedder(settings)
            return self._client
