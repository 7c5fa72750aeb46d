"""The `embed_chunks` step: a document's chunks through the text embedder's model actor (its batch lane) into
the model's space in pgvector. Runs in the engine's process, since the work is the actor's.

`load` reads the models in use (making their spaces, once) and, for each, the chunks without a vector in its
space; `run` embeds them; `save` stores every vector with the job's completion, so a crash leaves either the job
completed with all its vectors or none of them and the job retried (which embeds them all again). If no actor can
serve, the step raises and the job waits and retries: a chunk is never marked embedded without its vector.

During a model swap the chunks go to the target's space and the active one's (ModelClients.in_use), and the save
confirms that those are still the models in use (ModelClients.still_in_use), so a document uploaded meanwhile is
never left behind by the flip. A backfill job is the same step, queued in the backfill lane.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cluster.model_clients import EmbedderClient
from pipelines.engine.step import FileRef, Result
from pipelines.inference.clients import ModelClients
from store import documents, embeddings

BATCH = 128  # chunks per actor request, and per statement of the save


@dataclass(frozen=True)
class Pending:
    embedder: EmbedderClient
    chunks: list[dict[str, Any]]  # without a vector in the model's space: id, content


@dataclass(frozen=True)
class EmbedChunks:
    """`embedders`: the process's clients, for the models in use; one client pins the step to its model."""

    embedders: ModelClients[EmbedderClient] | EmbedderClient

    async def load(self, file: FileRef) -> dict[str, Pending]:
        """Per model in use: its embedder and the chunks it has no vector of (only those are embedded, swap or not)."""
        if isinstance(self.embedders, EmbedderClient):
            clients = {self.embedders.spec.model_id: self.embedders}
        else:
            clients = await self.embedders.in_use()
        pending = {}
        for model_id, embedder in clients.items():
            # DDL the first time a model is used, in a transaction of its own, not the completing one.
            await embeddings.ensure_space(model_id, embedder.spec.vector_dimension)
            pending[model_id] = Pending(embedder, await embeddings.unembedded(file.id, model_id))
        return pending

    async def run(self, pending: dict[str, Pending]) -> dict[str, Any]:
        """{"vectors": {model id: (chunk ids, their vectors)}}, held until the save: a document's vectors take a
        few MB (10,000 chunks of 384 float32s: 15 MB)."""
        vectors = {}
        for model_id, work in pending.items():
            batches = [work.chunks[start : start + BATCH] for start in range(0, len(work.chunks), BATCH)]
            rows = [await work.embedder.embed([row["content"] for row in batch], lane="batch") for batch in batches]
            vectors[model_id] = ([row["id"] for row in work.chunks], np.concatenate(rows) if rows else None)
        return {"vectors": vectors}

    async def save(self, file: FileRef, result: Result) -> None:
        vectors = result["vectors"]
        if isinstance(self.embedders, EmbedderClient):
            models = list(vectors)
        else:
            models = await self.embedders.still_in_use(vectors)
        for model_id in models:
            ids, rows = vectors[model_id]
            for start in range(0, len(ids), BATCH):
                end = start + BATCH
                await embeddings.save(model_id, file.tenant_id, file.id, ids[start:end], rows[start:end])


async def mark_failed(file: FileRef) -> None:
    await documents.set_embedding_status(file.id, "failed")
