"""The batching model actor on a real local Ray with the real MiniLM: batching, equality with the in-process
forward, retries when the actor dies mid-batch, replacement after N batches, and refusal of a missing model; and
with the real PP-OCR, whose copies read side by side."""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest
import ray

from cluster.model_actor import Batching, Recycling
from cluster.model_clients import EmbedderClient, OcrClient
from cluster.model_pool import NAMESPACE, InferenceUnavailable
from cluster.runtime import ensure_ray
from models.registry import Task, load, resolve
from models.text_embedding import TextEmbedder
from testkit.photos import text_photo

pytestmark = pytest.mark.integration

TEXTS = [f"report {i}: the {('pump', 'valve', 'crane', 'boiler')[i % 4]} was inspected on day {i}" for i in range(48)]
LONG = [
    f"{text}. " + "The inspection notes describe wear, corrosion and repairs in detail. " * 14 for text in TEXTS[:24]
]


@pytest.fixture(scope="module")
def reference() -> TextEmbedder:
    return load(resolve(Task.EMBED_TEXT))


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[EmbedderClient]:
    """One pool for the module: every actor start imports torch in a fresh worker (seconds on 2 cores). It
    retires its actor after 12 batches: the batching test stays below, the replacement test goes beyond."""
    ensure_ray(num_cpus=2)
    batching = Batching(max_batch_size=16, max_wait_ms=20)
    client = EmbedderClient(name=f"test-{uuid.uuid4().hex[:8]}", batching=batching, recycling=Recycling(max_batches=12))
    yield client
    await client.close(kill=True)


def live_actors(prefix: str) -> list[str]:
    return [
        named["name"]
        for named in ray.util.list_named_actors(all_namespaces=True)
        if named["namespace"] == NAMESPACE and named["name"].startswith(prefix)
    ]


async def test_concurrent_requests_are_batched_and_equal_the_in_process_forward(
    pool: EmbedderClient, reference: TextEmbedder
) -> None:
    rows = await asyncio.gather(*(pool.embed([text]) for text in TEXTS))
    np.testing.assert_allclose(np.concatenate(rows), reference.predict(TEXTS), atol=1e-5)
    assert max((await pool.stats())["recent_batch_sizes"]) > 1
    several = await pool.embed(TEXTS[:20], lane="batch")  # bigger than a batch: split, then joined in order
    np.testing.assert_allclose(several, reference.predict(TEXTS[:20]), atol=1e-5)


async def test_replacement_after_n_batches_fails_no_request(pool: EmbedderClient, reference: TextEmbedder) -> None:
    first = (await pool.stats())["pid"]
    in_flight: collections.deque[asyncio.Future[list[np.ndarray]]] = collections.deque()
    done: list[list[np.ndarray]] = []
    deadline = time.monotonic() + 40
    while (await pool.stats())["pid"] == first and time.monotonic() < deadline:  # requests in flight throughout
        in_flight.append(asyncio.gather(*(pool.embed([text]) for text in TEXTS[:12])))
        if len(in_flight) == 3:
            done.append(await in_flight.popleft())
        await asyncio.sleep(0.25)  # leave the successor CPU to load its model
    done.extend(await asyncio.gather(*in_flight))
    expected = reference.predict(TEXTS[:12])
    for rows in done:
        np.testing.assert_allclose(np.concatenate(rows), expected, atol=1e-5)
    await pool.close()
    assert (await pool.stats())["pid"] != first
    assert len(live_actors(f"{pool.name}@0#")) == 1  # the old one was drained and killed


async def test_an_actor_killed_mid_batch_is_replaced_and_its_requests_retried(
    pool: EmbedderClient, reference: TextEmbedder
) -> None:
    before = await pool.stats()
    requests = [asyncio.ensure_future(pool.embed([text])) for text in LONG]
    while not (stats := await pool.stats())["busy"] or not stats["queued"]:
        await asyncio.sleep(0.01)
    ray.kill(pool.actors[0])
    rows = await asyncio.gather(*requests)
    np.testing.assert_allclose(np.concatenate(rows), reference.predict(LONG), atol=1e-5)
    assert (await pool.stats())["pid"] != before["pid"]


async def test_an_unavailable_model_raises_inference_unavailable() -> None:
    pool = EmbedderClient("no-such-org/no-such-model")
    with pytest.raises(InferenceUnavailable, match="no-such-org/no-such-model"):
        await pool.embed(["anything"])


async def test_ocr_copies_share_the_queue() -> None:
    """The OCR actor holds a pipeline per thread: each free one takes its share of the queue at once (never a
    whole burst), so requests are read side by side, and a request split between copies is joined in order."""
    ensure_ray(num_cpus=2)
    images = [text_photo(word, (0.1, 0.3), size=(600, 250))[0] for word in ("PUMP", "VALVE", "CRANE", "BOILER")]
    expected = load(resolve(Task.OCR), threads=1).predict(images)
    assert [row["text"] for row in expected] == ["PUMP", "VALVE", "CRANE", "BOILER"]
    ocr = OcrClient(name=f"test-ocr-{uuid.uuid4().hex[:8]}", threads=2)
    try:
        assert await ocr.read(images) == expected
        rows = await asyncio.gather(*(ocr.read([image]) for image in images))
        assert [row for row_list in rows for row in row_list] == expected
        sizes = (await ocr.stats())["recent_batch_sizes"]
        assert max(sizes) == 2 and sum(sizes) == 2 * len(images), sizes
    finally:
        await ocr.close(kill=True)
