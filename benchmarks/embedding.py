"""Texts/s of all-MiniLM-L6-v2 through the batching model actor with concurrent callers (one text per call,
as the search endpoint sends them), against one-at-a-time calls through the same actor and against the
in-process batched forward of the same wrapper, for query-length (~16 tokens) and chunk-length (~200
tokens) texts, in one run. Each figure is the median of `--rounds` rounds, the three ways interleaved, so
that a noisy neighbour on a shared machine hits them alike.

    .venv/bin/python benchmarks/embedding.py [--queries 384] [--chunks 96] [--callers 64] [--rounds 3]

Targets (issue 4): actor with concurrent callers >= 0.9x the in-process batched forward for both lengths;
batching gain (concurrent / one-at-a-time) >= 2.5x for queries. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from cluster.model_actor import Batching, Lane
from cluster.model_clients import EmbedderClient
from cluster.runtime import ensure_ray
from models.registry import Task, load, resolve
from models.text_embedding import TextEmbedder

BATCH = 32  # the in-process batch size and the actor's, in both lanes
VOCABULARY = (
    "pump valve crane boiler inspection report damaged broken repair schedule maintenance pressure leak "
    "safety operator shift warehouse invoice contract supplier delivery quality audit sensor reading "
    "temperature vibration motor bearing replaced cracked housing seal gasket overdue approved rejected"
)


def texts(count: int, words: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    vocabulary = VOCABULARY.split()
    return [" ".join(rng.choice(vocabulary, words)) + "." for _ in range(count)]


def in_process(embedder: TextEmbedder, items: list[str]) -> float:
    start = time.perf_counter()
    for at in range(0, len(items), BATCH):
        embedder.predict(items[at : at + BATCH])
    return len(items) / (time.perf_counter() - start)


async def concurrent(client: EmbedderClient, items: list[str], callers: int, lane: Lane) -> float:
    queue = iter(items)

    async def caller() -> None:
        for text in queue:
            await client.embed([text], lane)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return len(items) / (time.perf_counter() - start)


async def one_at_a_time(client: EmbedderClient, items: list[str], lane: Lane) -> float:
    start = time.perf_counter()
    for text in items:
        await client.embed([text], lane)
    return len(items) / (time.perf_counter() - start)


async def measure(
    rounds: int, ways: dict[str, Callable[[], Awaitable[float] | float]]
) -> dict[str, tuple[float, list[float]]]:
    runs: dict[str, list[float]] = {name: [] for name in ways}
    for round_ in range(rounds):
        names = list(ways) if round_ % 2 == 0 else list(reversed(ways))
        for name in names:
            result = ways[name]()
            runs[name].append(await result if asyncio.iscoroutine(result) else result)
            await asyncio.sleep(0.3)  # let idle OpenMP threads stop spinning before the next way
    return {name: (statistics.median(values), values) for name, values in runs.items()}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=384)
    parser.add_argument("--chunks", type=int, default=96)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    ensure_ray(num_cpus=2)
    embedder = load(resolve(Task.EMBED_TEXT))
    batching = Batching(max_batch_size=BATCH, max_wait_ms=5, batch_lane_max_batch_size=BATCH)
    client = EmbedderClient(name="benchmark-embedding", batching=batching)
    queries, chunks = texts(args.queries, 13, 1), texts(args.chunks, 170, 2)
    query_tokens = statistics.mean(embedder.count_tokens(text) + 2 for text in queries)
    chunk_tokens = statistics.mean(min(embedder.count_tokens(text) + 2, embedder.max_length) for text in chunks)
    await client.embed(queries[:BATCH])  # the actor is up and warm
    in_process(embedder, queries[:BATCH])

    figures: dict[str, float] = {}
    for kind, items, serial, lane in (
        ("query", queries, queries[: args.queries // 4], "interactive"),
        ("chunk", chunks, chunks[: args.chunks // 4], "batch"),
    ):
        results = await measure(
            args.rounds,
            {
                "inprocess": lambda items=items: in_process(embedder, items),
                "actor": lambda items=items, lane=lane: concurrent(client, items, args.callers, lane),
                "serial": lambda serial=serial, lane=lane: one_at_a_time(client, serial, lane),
            },
        )
        for name, (median, values) in results.items():
            print(f"{kind:5} {name:9} {median:7.1f} texts/s  (rounds: {', '.join(f'{v:.1f}' for v in values)})")
        inprocess, actor, serial_tps = (results[name][0] for name in ("inprocess", "actor", "serial"))
        figures |= {
            f"{kind}_inprocess_tps": round(inprocess, 1),
            f"{kind}_actor_tps": round(actor, 1),
            f"{kind}_serial_tps": round(serial_tps, 1),
            f"{kind}_ratio": round(actor / inprocess, 3),
            f"{kind}_batching_gain": round(actor / serial_tps, 2),
        }
    stats = await client.stats()
    sizes = stats["batch_size_histogram"]
    print(f"tokens per text: query {query_tokens:.1f}, chunk {chunk_tokens:.1f}; actor batch sizes {sizes}")
    figures |= {
        "query_tokens": round(query_tokens, 1),
        "chunk_tokens": round(chunk_tokens, 1),
        "actor_mean_batch": round(stats["items"] / stats["batches"], 1),
        "actor_rss_mb": round(stats["rss_mb"]),
        "cpus": len(os.sched_getaffinity(0)),
    }
    await client.close(kill=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
