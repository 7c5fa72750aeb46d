"""The `embed_chunks` step: a document's chunks through the text embedder's model actor (its batch lane) into
the model's space in pgvector. Runs in the engine's process, since the work is the actor's.

Vectors are saved batch by batch and only missing ones are computed, so a retried or resumed job picks up
where the last one stopped. If no actor can serve, the step raises and the job waits and retries: a chunk
is never marked embedded without its vector.

During a model swap the chunks go to the target's space and the active one's (ModelClients.fill), so a
document uploaded meanwhile is never left behind by the flip. A backfill job is the same step, queued in the
backfill lane.
"""

from __future__ import annotations

from typing import Any

from cluster.actors import EmbedderClient
from pipelines.engine.step import FileRef
from pipelines.inference.clients import ModelClients
from store import documents, embeddings

BATCH = 128  # chunks per actor request: progress is saved after each


async def embed_chunks(file: FileRef, embedders: ModelClients[EmbedderClient] | EmbedderClient) -> dict[str, Any]:
    """`embedders`: the process's clients, for the models in use; one client pins the step to its model."""
    if isinstance(embedders, EmbedderClient):
        await _fill(file, embedders)
    else:
        await embedders.fill(lambda embedder, swapping: _fill(file, embedder))
    return {}


async def _fill(file: FileRef, embedder: EmbedderClient) -> None:
    """Only the chunks without a vector in the model's space are embedded, swap or not."""
    spec = embedder.spec
    await embeddings.ensure_space(spec.model_id, spec.vector_dimension)
    pending = await embeddings.unembedded(file.id, spec.model_id)
    for start in range(0, len(pending), BATCH):
        batch = pending[start : start + BATCH]
        vectors = await embedder.embed([row["content"] for row in batch], lane="batch")
        await embeddings.save(spec.model_id, file.tenant_id, file.id, [row["id"] for row in batch], vectors)


async def mark_failed(file: FileRef) -> None:
    await documents.set_embedding_status(file.id, "failed")
