"""Texts/s of all-MiniLM-L6-v2 through the batching model actor with concurrent callers (one text per call,
as the search endpoint sends them), against one-at-a-time calls through the same actor and against the
in-process batched forward of the same wrapper, for query-length (~16 tokens) and chunk-length (~200
tokens) texts, in one run. Each figure is the median of `--rounds` rounds, the three ways interleaved, so
that a noisy neighbour on a shared machine hits them alike.

    .venv/bin/python benchmarks/embedding.py [--queries 384] [--chunks 96] [--callers 64] [--rounds 3]

Targets: actor with concurrent callers >= 0.9x the in-process batched forward for both lengths; batching gain
(concurrent / one-at-a-time) >= 2.5x for queries. The last line is one JSON object.

With `--replicas N` it measures scaling out instead: chunk texts/s through N replicas of one torch thread each
against one replica of one thread (target on 2 cores, N=2: >= 1.6x; it needs the two cores free: the JSON has
the load average, `*_cores_used` the CPU the pool's replicas got while measured and `pool_per_core_ratio` the
texts per CPU-second of N replicas against one), and the latency of single queries sent while the batch lane
holds two batches per replica, for the model pool's replicas (`--impl pool`), a Ray Serve deployment with
@serve.batch (`--impl serve`, benchmarks/serve_embedding.py; needs `pip install "ray[serve]"`) or both:

    .venv/bin/python benchmarks/embedding.py --replicas 2 --impl both [--chunks 192] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import psutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from cluster.model_actor import Batching, Lane
from cluster.model_clients import EmbedderClient
from cluster.model_pool import Scaling
from cluster.runtime import ensure_ray
from models.registry import ModelSpec, Task, load, resolve
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


Embed = Callable[[str], Awaitable[object]]


async def calls(embed: Embed, items: list[str], callers: int) -> float:
    """Texts/s of `callers` concurrent callers sending one text per call."""
    queue = iter(items)

    async def caller() -> None:
        for text in queue:
            await embed(text)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return len(items) / (time.perf_counter() - start)


async def latencies_under_load(
    query: Embed, chunk: Embed, queries: list[str], chunks: list[str], callers: int
) -> list[float]:
    """Seconds each of `queries`, sent one after the other, took while `callers` keep the batch lane saturated."""
    loading = True

    async def loader(offset: int) -> None:
        at = offset
        while loading:
            await chunk(chunks[at % len(chunks)])
            at += callers

    loaders = [asyncio.create_task(loader(offset)) for offset in range(callers)]
    await asyncio.sleep(1.0)  # the queues fill
    seconds = []
    for text in queries:
        start = time.perf_counter()
        await query(text)
        seconds.append(time.perf_counter() - start)
    loading = False
    await asyncio.gather(*loaders)
    return seconds


async def concurrent(client: EmbedderClient, items: list[str], callers: int, lane: Lane) -> float:
    return await calls(lambda text: client.embed([text], lane), items, callers)


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
    parser.add_argument("--replicas", type=int, help="measure N replicas of one thread against one")
    parser.add_argument("--impl", choices=("pool", "serve", "both"), default="pool")
    args = parser.parse_args()

    ensure_ray(num_cpus=2)
    if args.replicas:
        print(json.dumps(await scale_out(args)))
        return
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


@dataclass(frozen=True)
class Way:
    """One implementation at one size: how a caller embeds a chunk (batch lane) and a query (interactive)."""

    chunk: Embed
    query: Embed
    pids: tuple[int, ...] = ()  # its replicas' processes, where known (this machine's)


def cpu_seconds(pids: tuple[int, ...]) -> float:
    """CPU time the processes have used: how much of the machine the replicas got, whatever else runs on it."""
    return sum(psutil.Process(pid).cpu_times().user + psutil.Process(pid).cpu_times().system for pid in pids)


async def pool_way(spec: ModelSpec, replicas: int, warm: list[str]) -> Way:
    batching = Batching(max_batch_size=BATCH, max_wait_ms=5, batch_lane_max_batch_size=BATCH)
    client = EmbedderClient(
        spec.model_id,
        name=f"benchmark-replicas-{replicas}",
        batching=batching,
        threads=1,
        num_cpus=0.1,
        scaling=Scaling(replicas, replicas),
    )
    await client.embed(warm, "batch")
    while len(client.actors) < replicas:  # the others start in the background
        await asyncio.sleep(0.2)
    pids = tuple(stats["pid"] for stats in await client.replica_stats())
    return Way(lambda text: client.embed([text], "batch"), lambda text: client.embed([text], "interactive"), pids)


def serve_way(spec: ModelSpec, replicas: int) -> Way:
    from benchmarks import serve_embedding  # Ray Serve's extra dependencies only when measured

    handle = serve_embedding.start(spec, replicas, threads=1, num_cpus=0.1)
    return Way(handle.remote, handle.remote)  # one FIFO queue per replica: no lanes


async def scale_out(args: argparse.Namespace) -> dict[str, object]:
    """Per implementation: chunk texts/s with 1 and with N replicas of one thread (rounds interleaved), and query
    latencies on N replicas while the batch lane is saturated."""
    spec = resolve(Task.EMBED_TEXT)
    chunks, queries = texts(args.chunks, 170, 2), texts(8, 13, 1)
    impls = ("pool", "serve") if args.impl == "both" else (args.impl,)
    sizes = (1, args.replicas)
    ways: dict[str, Way] = {}
    for impl in impls:
        for replicas in sizes:
            way = await pool_way(spec, replicas, chunks[:BATCH]) if impl == "pool" else serve_way(spec, replicas)
            await calls(way.chunk, chunks[: BATCH * replicas], args.callers)  # every replica warm
            ways[f"{impl}_{replicas}x1"] = way
    used = {name: cpu_seconds(way.pids) for name, way in ways.items()}
    results = await measure(
        args.rounds, {name: lambda way=way: calls(way.chunk, chunks, args.callers) for name, way in ways.items()}
    )
    for name, way in ways.items():  # cores the replicas had while measured: 2 replicas need 2 free cores
        if way.pids:
            busy_s = sum(len(chunks) / tps for tps in results[name][1])
            used[name] = (cpu_seconds(way.pids) - used[name]) / busy_s
            print(f"{name:9} replicas used {used[name]:.2f} cores")
    figures: dict[str, object] = {"replicas": args.replicas, "chunk_texts": args.chunks, "callers": args.callers}
    for name, (median, values) in results.items():
        print(f"{name:9} {median:7.1f} texts/s  (rounds: {', '.join(f'{v:.1f}' for v in values)})")
        figures[f"{name}_tps"] = round(median, 1)
        if ways[name].pids:
            figures[f"{name}_cores_used"] = round(used[name], 2)
    for impl in impls:
        figures[f"{impl}_scale_ratio"] = round(results[f"{impl}_{args.replicas}x1"][0] / results[f"{impl}_1x1"][0], 2)
        if ways[f"{impl}_1x1"].pids:
            per_core = [results[f"{impl}_{n}x1"][0] / used[f"{impl}_{n}x1"] for n in sizes]
            figures[f"{impl}_per_core_ratio"] = round(per_core[1] / per_core[0], 2)
        way = ways[f"{impl}_{args.replicas}x1"]
        idle = [await timed(way.query, text) for text in queries]
        # A backfill's depth: two batches per replica, one running and one queued.
        loaded = await latencies_under_load(way.query, way.chunk, queries, chunks, 2 * BATCH * args.replicas)
        for state, seconds in (("idle", idle), ("loaded", loaded)):
            figures[f"{impl}_query_p50_ms_{state}"] = round(statistics.median(seconds) * 1000, 1)
            figures[f"{impl}_query_p95_ms_{state}"] = round(float(np.percentile(seconds, 95)) * 1000, 1)
        p50s = (figures[f"{impl}_query_p50_ms_{state}"] for state in ("idle", "loaded"))
        print(f"{impl}: query p50 ms idle {next(p50s)}, with the batch lane saturated {next(p50s)}")
    figures["cpus"] = len(os.sched_getaffinity(0))
    figures["load_average"] = round(os.getloadavg()[0], 1)  # a shared machine's other work shows here
    return figures


async def timed(embed: Embed, text: str) -> float:
    start = time.perf_counter()
    await embed(text)
    return time.perf_counter() - start


if __name__ == "__main__":
    asyncio.run(main())
