"""A BGE-like sentence-transformers model (CLS pooling, a query prompt) gives its real vectors in the service, as
sentence-transformers computes them for the same tiny random directory: through a model actor on a real local Ray
(queries and documents batched together keep their own prompts), and after a swap to it through the real
`scopix models activate`, in the stored chunk vectors and in the search route's scores."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from cluster.model_actor import Batching
from cluster.model_clients import EmbedderClient
from cluster.runtime import ensure_ray
from models.registry import MINILM
from pipelines.inference.in_use import STATE_TTL_SECONDS
from store import documents, embeddings
from store.tables import Job
from testkit.tiny_models import sentence_encoder
from tests.support.callers import new_caller
from tests.support.file_rows import insert_file, insert_paragraphs
from tests.support.model_swaps import Running, scopix, until_flipped

pytestmark = pytest.mark.integration

TEXTS = ["pump inspection in the north workshop", "the valve was replaced after the storm", "crane load report"]
QUERY_PROMPT = "Represent this sentence for searching relevant passages: "


def _bge_like(directory: Path) -> tuple[Path, SentenceTransformer]:
    directory = sentence_encoder(directory, ("cls",), prompts={"query": QUERY_PROMPT})
    return directory, SentenceTransformer(str(directory), device="cpu", local_files_only=True)


async def test_queries_and_documents_get_their_prompts_through_the_actor(tmp_path: Path) -> None:
    directory, theirs = _bge_like(tmp_path)
    ensure_ray(num_cpus=2)
    client = EmbedderClient(
        str(directory), num_cpus=0.0, name=f"test-{uuid.uuid4().hex[:8]}", batching=Batching(max_wait_ms=50)
    )
    try:
        # sent together: the actor may put both roles in one batch
        queries, chunks = await asyncio.gather(
            client.embed(TEXTS, lane="interactive", role="query"), client.embed(TEXTS, lane="interactive")
        )
    finally:
        await client.close(kill=True)

    np.testing.assert_allclose(queries, theirs.encode_query(TEXTS), atol=1e-5)
    np.testing.assert_allclose(chunks, theirs.encode_document(TEXTS), atol=1e-5)
    assert np.abs(queries - chunks).max() > 1e-3


async def test_a_swap_to_it_stores_and_searches_its_real_vectors(http, settings, tmp_path: Path) -> None:
    """About 30 s on 2 cores: a real swap (the command, the backfill on an engine, the new model's actor, the flip)
    and the API's readers seeing it; the swap machinery's own cases are in test_model_swap.py."""
    directory, theirs = _bge_like(tmp_path)
    model_id = str(directory.resolve())
    caller = await new_caller()
    file_id = await insert_file(
        caller.tenant_id, "site-notes.txt", text_extraction_status="completed", embedding_status="completed"
    )
    await insert_paragraphs(file_id, caller.tenant_id, TEXTS)
    content = {row.id: row.content for row in await documents.chunks_of(file_id)}
    minilm = EmbedderClient(MINILM, num_cpus=0.0)
    await embeddings.ensure_space(minilm.spec.model_id, minilm.spec.dimension)
    await embeddings.save(MINILM, caller.tenant_id, file_id, list(content), await minilm.embed(list(content.values())))

    engine = None
    try:
        code, _, err = await scopix(settings, "models", "activate", "embed_text", model_id)
        assert code == 0, err
        engine = Running(settings)
        await until_flipped("embed_text", model_id)
        await asyncio.sleep(STATE_TTL_SECONDS + 0.1)  # the API reads the active model at most this stale

        stored = await embeddings.vectors_of(file_id, model_id)
        assert set(stored) == set(content)
        for chunk_id, vector in stored.items():
            np.testing.assert_allclose(vector, theirs.encode_document([content[chunk_id]])[0], atol=1e-5)

        query = "a broken valve"
        response = await http.post("/api/v2/files/search", headers=caller.headers, json={"query": query, "limit": 10})
        assert response.status_code == 200, response.text
        cosines = {
            chunk_id: float(theirs.encode_query([query])[0] @ theirs.encode_document([text])[0])
            for chunk_id, text in content.items()
        }
        hits = {uuid.UUID(item["chunk_id"]): item["similarity_score"] for item in response.json()["items"]}
        assert hits and set(hits) == {chunk_id for chunk_id, cosine in cosines.items() if cosine > 0}, cosines
        for chunk_id, score in hits.items():
            assert score == pytest.approx(cosines[chunk_id], abs=1e-4)
    finally:
        if engine is not None:
            await engine.stop()
        await Job.raw("DELETE FROM model_state WHERE task = 'embed_text'")  # back to the settings' model
        await asyncio.sleep(STATE_TTL_SECONDS + 0.1)
