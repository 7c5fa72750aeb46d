"""The `embed_chunks` step: a document's chunks through the text embedder's model actor (its batch lane) into
the model's space in pgvector. Runs in the engine's process, since the work is the actor's.

Vectors are saved batch by batch and only missing ones are computed, so a retried or resumed job picks up
where the last one stopped. If no actor can serve, the step raises and the job waits and retries: a chunk
is never marked embedded without its vector.
"""

from __future__ import annotations

from typing import Any

from cluster.actors import EmbedderClient
from pipelines.step import FileRef
from store import documents, embeddings

BATCH = 128  # chunks per actor request: progress is saved after each


async def embed_chunks(file: FileRef, embedder: EmbedderClient) -> dict[str, Any]:
    spec = embedder.spec
    await embeddings.ensure_space(spec.model_id, spec.dimension)
    pending = await embeddings.unembedded(file.id, spec.model_id)
    for start in range(0, len(pending), BATCH):
        batch = pending[start : start + BATCH]
        vectors = await embedder.embed([row["content"] for row in batch], lane="batch")
        await embeddings.save(spec.model_id, file.tenant_id, file.id, [row["id"] for row in batch], vectors)
    return {}


async def mark_failed(file: FileRef) -> None:
    await documents.set_embedding_status(file.id, "failed")
