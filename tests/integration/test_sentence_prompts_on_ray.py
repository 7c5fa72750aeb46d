"""Queries and documents keep their own prompts through a model actor on a real local Ray: the search path's
`role="query"` reaches the actor, which may batch them with document chunks."""

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
from testkit.tiny_models import sentence_encoder

pytestmark = pytest.mark.integration

TEXTS = ["pump inspection", "the valve was replaced", "crane report"]


async def test_queries_and_documents_get_their_prompts_through_the_actor(tmp_path: Path) -> None:
    directory = sentence_encoder(tmp_path, ("cls",), prompts={"query": "Represent this sentence for searching: "})
    theirs = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
    ensure_ray(num_cpus=2)
    client = EmbedderClient(
        str(directory), num_cpus=0.0, name=f"test-{uuid.uuid4().hex[:8]}", batching=Batching(max_wait_ms=50)
    )
    try:
        # sent together: the actor may put both roles in one batch
        queries, documents = await asyncio.gather(
            client.embed(TEXTS, lane="interactive", role="query"), client.embed(TEXTS, lane="interactive")
        )
    finally:
        await client.close(kill=True)

    np.testing.assert_allclose(queries, theirs.encode_query(TEXTS), atol=1e-5)
    np.testing.assert_allclose(documents, theirs.encode_document(TEXTS), atol=1e-5)
    assert np.abs(queries - documents).max() > 1e-3
