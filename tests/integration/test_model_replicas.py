"""Model replicas on a real local Ray with a tiny random BERT embedder: requests spread over two replicas, a killed
replica is replaced and what it held is answered by the other, the interactive lane stays ahead of the batch lane,
whose batches keep to their time budget, and a pool scales up under a queue and back down when idle. Each replica is
a Ray worker that imports torch (seconds on 2 cores): the module takes about a minute, most of it replica starts."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
import pytest
import ray
from ray.exceptions import RayActorError

from cluster.model_actor import Batching
from cluster.model_clients import EmbedderClient
from cluster.model_pool import NAMESPACE, InferenceUnavailable, Scaling
from cluster.runtime import ensure_ray
from models.registry import Task, load, resolve
from models.text_embedding import TextEmbedder
from testkit.tiny_models import tiny_bert

pytestmark = pytest.mark.integration

SHORT = [f"query {i} about the {('pump', 'valve', 'crane', 'boiler')[i % 4]}" for i in range(96)]
# About 180 tokens each: a request of 128 keeps a replica busy for seconds.
LONG = [
    f"report {i}: " + "The inspection notes describe wear, corrosion and repairs in detail. " * 14 for i in range(128)
]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    ensure_ray(num_cpus=2)
    return tiny_bert(tmp_path_factory.mktemp("tiny-replicas"), 32, 7)


@pytest.fixture(scope="module")
def reference(model: str) -> TextEmbedder:
    return load(resolve(Task.EMBED_TEXT, model), threads=1)


def new_pool(model: str, scaling: Scaling, **options: Any) -> EmbedderClient:
    options.setdefault("batching", Batching(max_batch_size=16, batch_lane_max_batch_size=32))
    name = f"test-{uuid.uuid4().hex[:8]}"
    return EmbedderClient(model, name=name, num_cpus=0.1, threads=1, scaling=scaling, **options)


@pytest.fixture(scope="module")
async def pair(model: str) -> AsyncIterator[EmbedderClient]:
    """Two replicas, up: shared by the module's tests, since each replica start takes seconds."""
    pool = new_pool(model, Scaling(min_replicas=2, max_replicas=2))
    await pool.embed(SHORT[:1])  # starts both: the one it waits for, the other in the background
    await ready(pool, 2)
    yield pool
    await pool.close(kill=True)


async def until(condition: Callable[[], Awaitable[bool]], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.1)


async def ready(pool: EmbedderClient, count: int) -> None:
    """The pool has `count` replicas up (their models loaded)."""

    async def up() -> bool:
        return len(pool.actors) == count

    await until(up, f"{count} replicas of {pool.name}")


def live(prefix: str) -> list[str]:
    return [
        named["name"]
        for named in ray.util.list_named_actors(all_namespaces=True)
        if named["namespace"] == NAMESPACE and named["name"].startswith(prefix)
    ]


async def test_two_replicas_both_serve(pair: EmbedderClient, reference: TextEmbedder) -> None:
    pool = pair
    before = [replica["items"] for replica in await pool.replica_stats()]
    rows = await asyncio.gather(*(pool.embed([text]) for text in SHORT))
    np.testing.assert_allclose(np.concatenate(rows), reference.predict(SHORT), atol=1e-5)
    stats = await pool.replica_stats()
    assert len({replica["pid"] for replica in stats}) == 2
    served = [replica["items"] - items for replica, items in zip(stats, before, strict=True)]
    assert min(served) > 0 and sum(served) == len(SHORT), served  # requests landed on both, each on one
    assert len(live(f"{pool.name}@0#")) == len(live(f"{pool.name}@1#")) == 1


async def test_a_killed_replica_is_replaced_and_its_request_answered_by_another(
    pair: EmbedderClient, reference: TextEmbedder
) -> None:
    pool = pair
    request = asyncio.ensure_future(pool.embed(LONG, lane="batch"))
    busy: list[ray.actor.ActorHandle] = []

    async def one_busy() -> bool:
        stats = await pool.replica_stats()
        busy[:] = [actor for actor, s in zip(pool.actors, stats, strict=True) if s["busy"] or s["queued"]]
        return bool(busy)

    await until(one_busy, "a replica busy with the request")
    [killed] = busy
    killed_pid = (await killed.stats.remote())["pid"]
    ray.kill(killed)
    np.testing.assert_allclose(await request, reference.predict(LONG), atol=1e-5)
    await ready(pool, 2)  # the lost one is started again: the minimum is two

    async def replaced() -> bool:
        return len({s["pid"] for s in await pool.replica_stats()} - {killed_pid}) == 2

    await until(replaced, "a successor of the killed replica")


async def test_a_request_outlasts_successive_replica_deaths(model: str, reference: TextEmbedder) -> None:
    """As when a node dies: the replica and the successors placed on it meanwhile die one after the other; the
    request is answered once one survives, not failed after three quick tries."""
    pool = new_pool(model, Scaling(), lost_retry_s=60.0)
    try:
        await pool.embed(SHORT[:1])
        request = asyncio.ensure_future(pool.embed(LONG, lane="batch"))
        killed: set[int] = set()
        for _ in range(4):  # more deaths than the pool's three attempts

            async def busy_anew() -> bool:
                try:
                    return bool(pool.actors) and (await pool.actors[0].stats.remote())["pid"] not in killed
                except RayActorError:  # the one just killed, not yet forgotten
                    return False

            await until(busy_anew, "a replica serving the request")
            actor = pool.actors[0]
            killed.add((await actor.stats.remote())["pid"])
            ray.kill(actor)
        np.testing.assert_allclose(await request, reference.predict(LONG), atol=1e-5)
    finally:
        await pool.close(kill=True)


async def test_the_interactive_lane_stays_ahead_with_replicas(pair: EmbedderClient, reference: TextEmbedder) -> None:
    pool = pair
    # Eight requests of 64 long texts: seconds of work for each replica, in batches of 32.
    backlog = [asyncio.ensure_future(pool.embed(LONG[i % 2 :: 2], lane="batch")) for i in range(8)]

    async def both_busy() -> bool:
        return all(s["busy"] for s in await pool.replica_stats())

    await until(both_busy, "both replicas busy with the batch lane")
    query = await pool.embed(SHORT[:3], lane="interactive")
    unfinished = sum(not future.done() for future in backlog)
    np.testing.assert_allclose(query, reference.predict(SHORT[:3]), atol=1e-5)
    assert unfinished, "the query waited for the whole batch lane"
    await asyncio.gather(*backlog)


async def test_batch_lane_batches_are_cut_to_the_time_budget(model: str, reference: TextEmbedder) -> None:
    budget = Batching(max_batch_size=16, batch_lane_max_batch_size=32, batch_lane_max_batch_s=1e-6)
    size_only = Batching(max_batch_size=16, batch_lane_max_batch_size=32, batch_lane_max_batch_s=None)
    pools = {name: new_pool(model, Scaling(), batching=b) for name, b in (("budget", budget), ("size only", size_only))}
    sizes = {}
    try:
        for name, pool in pools.items():
            rows = await asyncio.gather(*(pool.embed([text], lane="batch") for text in LONG[:32]))
            np.testing.assert_allclose(np.concatenate(rows), reference.predict(LONG[:32]), atol=1e-5)
            stats = await pool.stats()
            sizes[name] = stats["recent_batch_sizes"]
            assert stats["batch_lane_item_s"] > 0
    finally:
        for pool in pools.values():
            await pool.close(kill=True)
    # The first batch sets the budget's seconds per item; no item takes a microsecond, so every later batch is one.
    assert set(sizes["budget"][1:]) == {1}, sizes
    assert max(sizes["size only"]) > 1, sizes  # the same load batches without the budget


async def test_scales_up_under_a_queue_and_down_when_idle(model: str) -> None:
    pool = new_pool(model, Scaling(min_replicas=1, max_replicas=2, idle_s=1.0))
    try:
        await scale_up_and_down(pool)
    finally:
        await pool.close(kill=True)


async def scale_up_and_down(pool: EmbedderClient) -> None:
    await pool.embed(SHORT[:1])
    assert len(pool.actors) == 1
    load = [asyncio.ensure_future(pool.embed(LONG[i::4], lane="batch")) for i in range(4)]  # 4 batches queued
    await ready(pool, 2)
    await asyncio.gather(*(pool.embed([text]) for text in SHORT))  # the newcomer takes its share
    await asyncio.gather(*load)
    assert all(s["items"] > 0 for s in await pool.replica_stats())
    await ready(pool, 1)  # idle for a second: the extra replica is retired

    async def gone() -> bool:
        return not live(f"{pool.name}@1#")

    await until(gone, "the extra replica's actor ended")
    assert len(live(f"{pool.name}@0#")) == 1


async def test_a_replica_asks_for_its_custom_resources(model: str) -> None:
    """A replica that asks for a resource no node has never starts: the resources reach Ray (a test of two nodes
    places replicas on the second one with a resource only it has)."""
    pool = new_pool(model, Scaling(), resources={"no-such-node": 1.0}, start_timeout_s=2.0)
    with pytest.raises(InferenceUnavailable, match="no-such-node"):
        await pool.embed(SHORT[:1])
