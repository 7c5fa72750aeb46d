"""Model actors: one Ray actor holds one loaded model and batches the requests of every caller, and a
client-side pool that finds it by name, replaces it when it dies or wears out, and retries what was lost.

Requests queue in two lanes: `interactive` (a search query waiting on an HTTP response) is served first,
in batches of up to `max_batch_size`; `batch` (chunks of a document job) in bigger ones. A lone request at an
idle actor starts at once; requests queued together wait up to their lane's `max_wait_ms` for a full batch. The
forward runs in a thread (one per copy, for a model holding several), so requests keep queueing meanwhile. Each
process's pool also coalesces its own concurrent requests into few actor calls, since a Ray call costs about
as much CPU as the forward of a short query.

Actors are named `model:{task}:{model_id}#{generation}` in the "scopix" namespace, so the API and the job
worker share one per model. They are not detached: an actor fate-shares with the process that created it,
so no actor outlives every process that uses it holding GPU memory or running old code after a deploy; if
its owner exits, the other processes' pools see it die and start a successor, as for any other death.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import psutil
import ray
from ray.actor import ActorHandle
from ray.exceptions import GetTimeoutError, RayActorError

from cluster import tracing
from models.registry import ModelSpec, ModelUnavailable, Task, load, resolve

log = logging.getLogger(__name__)

NAMESPACE = "scopix"
Lane = Literal["interactive", "batch"]
LANES: tuple[Lane, ...] = ("interactive", "batch")  # in priority order


class InferenceUnavailable(Exception):
    """No model actor can serve now (model missing, actor failing to start or dying): retry the job later."""


@dataclass(frozen=True)
class Batching:
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    batch_lane_max_batch_size: int = 64
    batch_lane_max_wait_ms: float = 50.0


@dataclass(frozen=True)
class Recycling:
    """When an actor retires (long-running inference workers leak); None: never for that reason."""

    max_batches: int | None = None
    max_rss_mb: float | None = None


@dataclass(eq=False)
class _Request:
    items: Sequence[Any]
    arrived: float
    future: asyncio.Future[Any]
    offset: int = 0  # items handed to batches so far
    received: int = 0
    parts: dict[int, Any] = field(default_factory=dict)  # rows by their first item's offset

    def receive(self, start: int, rows: Any) -> None:
        """The rows of the items from `start` on; parts may come in any order (forwards run side by side)."""
        self.parts[start] = rows
        self.received += len(rows)
        if self.received == len(self.items) and not self.future.done():
            self.future.set_result(_join([self.parts[at] for at in sorted(self.parts)]))


def _join(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    return [row for part in parts for row in part]


@ray.remote
class ModelActor:
    """Holds one model; `infer` returns the caller's own rows and whether this actor is retiring."""

    def __init__(
        self, spec: ModelSpec, method: str, batching: Batching, recycling: Recycling, device: str, threads: int | None
    ) -> None:
        self._model = load(spec, device=device, threads=threads)
        self._forward = getattr(self._model, method)
        self._batching = batching
        self._recycling = recycling
        self._slots = self._model.concurrency  # forwards at once (a model holding copies of itself: several)
        self._executor = ThreadPoolExecutor(max_workers=self._slots, thread_name_prefix="forward")
        self._queues: dict[Lane, collections.deque[_Request]] = {lane: collections.deque() for lane in LANES}
        self._queued = 0
        self._arrived = asyncio.Event()  # a request arrived or a forward ended: the batcher looks again
        self._batcher: asyncio.Task[None] | None = None
        self._running = 0  # forwards in progress
        self._forwards: set[asyncio.Task[None]] = set()
        self._last_arrival = time.monotonic()
        self._batches = 0
        self._items = 0
        self._recent_sizes: collections.deque[int] = collections.deque(maxlen=100)
        self._histogram: collections.Counter[int] = collections.Counter()
        self._retiring = False

    async def infer(self, items: Sequence[Any], lane: Lane) -> tuple[Any, bool]:
        request = _Request(items, time.monotonic(), asyncio.get_running_loop().create_future())
        self._queues[lane].append(request)
        self._queued += len(items)
        self._last_arrival = request.arrived
        self._arrived.set()
        if self._batcher is None:
            self._batcher = asyncio.create_task(self._run())
        return await request.future, self._retiring

    async def stats(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "model_id": self._model.model_id,
            "revision": self._model.revision,
            "batches": self._batches,
            "items": self._items,
            "recent_batch_sizes": list(self._recent_sizes),
            "batch_size_histogram": dict(self._histogram),
            "queued": self._queued,
            "busy": self._running > 0,
            "rss_mb": psutil.Process().memory_info().rss / 2**20,
            "retiring": self._retiring,
        }

    async def drain(self, quiet_s: float) -> None:
        """Return once nothing is queued or running and nothing has arrived for `quiet_s`."""
        while self._queued or self._running or time.monotonic() - self._last_arrival < quiet_s:
            await asyncio.sleep(0.05)

    async def _run(self) -> None:
        while True:
            if self._queued and self._running < self._slots:
                batch = self._take(await self._gathered())
                if batch:
                    self._running += 1
                    forward = asyncio.create_task(self._forward_batch(batch))
                    self._forwards.add(forward)
                    forward.add_done_callback(self._forwards.discard)
                continue
            self._arrived.clear()
            await self._arrived.wait()

    async def _forward_batch(self, batch: list[tuple[_Request, int, int]]) -> None:
        items = [item for request, start, end in batch for item in request.items[start:end]]
        try:
            rows = await asyncio.get_running_loop().run_in_executor(self._executor, self._forward, items)
        except Exception as error:
            for request, _, _ in batch:
                if not request.future.done():
                    request.future.set_exception(error)
        else:
            at = 0
            for request, start, end in batch:
                request.receive(start, rows[at : at + end - start])
                at += end - start
        finally:
            self._running -= 1
            self._arrived.set()
        self._record(len(items))

    def _limits(self) -> tuple[int, float]:
        """Interactive requests waiting: small batches, short waits; batch lane alone: bigger and longer."""
        b = self._batching
        if self._queues["interactive"]:
            return b.max_batch_size, b.max_wait_ms / 1000
        return b.batch_lane_max_batch_size, b.batch_lane_max_wait_ms / 1000

    async def _gathered(self) -> int:
        """The next batch's size, once it is worth starting. A model running forwards side by side gives a free slot
        its share of the queue at once. A model with one forward at a time starts a lone request at once (waiting
        would only add latency, and what arrives meanwhile forms the next batch); only when several requests are
        queued together does it wait for a full batch, at most until the oldest has waited its lane's maximum."""
        if self._slots > 1:
            return min(self._limits()[0], -(-self._queued // self._slots))
        while True:
            size, wait_s = self._limits()
            if self._queued >= size or sum(map(len, self._queues.values())) <= 1:
                return size
            oldest = min(queue[0].arrived for queue in self._queues.values() if queue)
            timeout = oldest + wait_s - time.monotonic()
            if timeout <= 0:
                return size
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                return self._limits()[0]

    def _take(self, size: int) -> list[tuple[_Request, int, int]]:
        """Up to `size` items, interactive first; a request bigger than the room left is split."""
        batch: list[tuple[_Request, int, int]] = []
        room = size
        for queue in self._queues.values():
            while queue and room:
                request = queue[0]
                left = len(request.items) - request.offset
                if request.future.done():  # its caller was cancelled, or an earlier part failed
                    queue.popleft()
                    self._queued -= left
                    continue
                taken = min(room, left)
                batch.append((request, request.offset, request.offset + taken))
                request.offset += taken
                room -= taken
                self._queued -= taken
                if taken == left:
                    queue.popleft()
        return batch

    def _record(self, size: int) -> None:
        self._batches += 1
        self._items += size
        self._recent_sizes.append(size)
        self._histogram[size] += 1
        r = self._recycling
        worn = r.max_batches is not None and self._batches >= r.max_batches
        bloated = r.max_rss_mb is not None and psutil.Process().memory_info().rss / 2**20 >= r.max_rss_mb
        self._retiring = self._retiring or worn or bloated


class ModelPool:
    """The handle every process uses to reach the model actor of one model: finds or starts it, retries
    requests lost with a dying actor on its successor, and replaces a retiring actor without failing
    requests in flight (start the successor, route new requests to it, drain the old one, then kill it).

    Settings: `num_cpus`/`num_gpus` reserve the actor's share (fractional: on 2 cores an actor holding every
    CPU starves Ray's tasks), `threads` the model's CPU threads (None: all usable; torch's threads, or one per
    copy for OCR), `batching` the queue, `recycling` when to retire an actor. The first pool to start an actor
    decides its settings."""

    def __init__(
        self,
        task: Task | str,
        model: str | None = None,
        *,
        method: str,
        num_cpus: float = 0.5,
        num_gpus: float = 0.0,
        threads: int | None = None,
        batching: Batching = Batching(),
        recycling: Recycling = Recycling(),
        calls_in_flight: int = 2,
        attempts: int = 3,
        start_timeout_s: float = 300.0,
        name: str | None = None,
    ) -> None:
        self._task, self._model, self._method, self._name = Task(task), model, method, name
        self._options = {"num_cpus": num_cpus, "num_gpus": num_gpus}
        self._args = (batching, recycling, "cuda" if num_gpus > 0 else "cpu", threads)
        self._waiting: dict[Lane, collections.deque[tuple[Sequence[Any], asyncio.Future[Any]]]] = {
            lane: collections.deque() for lane in LANES
        }
        self._group_size = {"interactive": batching.max_batch_size, "batch": batching.batch_lane_max_batch_size}
        self._calls_in_flight = calls_in_flight
        self._in_flight = dict.fromkeys(LANES, 0)
        self._sending: set[asyncio.Task[None]] = set()
        self._quiet_s = max(1.0, batching.batch_lane_max_wait_ms / 1000 * 4)
        self._attempts, self._start_timeout_s = attempts, start_timeout_s
        self._spec: ModelSpec | None = None
        self._actor: ActorHandle | None = None
        self._generation = -1  # of self._actor; a successor gets a higher one
        self._lock = asyncio.Lock()
        self._replacing: asyncio.Task[None] | None = None

    @property
    def spec(self) -> ModelSpec:
        """The resolved model; raises InferenceUnavailable when it is unknown or missing."""
        if self._spec is None:
            try:
                self._spec = resolve(self._task, self._model)
            except ModelUnavailable as error:
                raise InferenceUnavailable(str(error)) from error
        return self._spec

    @property
    def actor(self) -> ActorHandle | None:
        """The actor requests go to now; None before the first request or after it was lost."""
        return self._actor

    async def infer(self, items: Sequence[Any], lane: Lane = "interactive") -> Any:
        """The model's rows for `items` (non-empty), in order; raises InferenceUnavailable, never returns less."""
        if lane not in LANES:
            raise ValueError(f"lane must be one of {LANES}, not {lane!r}")
        if not items:
            raise ValueError("nothing to infer")
        attributes: dict[str, str | int] = {
            "scopix.model.id": self.spec.model_id,  # resolving it refuses a missing model before queueing
            "scopix.model.lane": lane,
            "scopix.model.items": len(items),
        }
        with tracing.tracer().start_as_current_span(f"model {self._task.value}", attributes=attributes):
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiting[lane].append((items, future))
            self._send_waiting(lane)
            return await future

    def _send_waiting(self, lane: Lane) -> None:
        """Coalesce this process's waiting requests into actor calls, at most `calls_in_flight` per lane: alone,
        a request leaves at once; under load one call carries many (a Ray call costs about as much CPU as the
        forward of a short query, so one call per query would halve the throughput on a CPU)."""
        waiting, limit = self._waiting[lane], self._group_size[lane]
        while waiting and self._in_flight[lane] < self._calls_in_flight:
            group = [waiting.popleft()]
            size = len(group[0][0])
            while waiting and size + len(waiting[0][0]) <= limit:
                size += len(waiting[0][0])
                group.append(waiting.popleft())
            self._in_flight[lane] += 1
            task = asyncio.create_task(self._send(lane, group))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, lane: Lane, group: list[tuple[Sequence[Any], asyncio.Future[Any]]]) -> None:
        try:
            rows = await self._call([item for items, _ in group for item in items], lane)
        except Exception as error:  # InferenceUnavailable, or the model's own error: each caller gets it
            for _, future in group:
                if not future.done():
                    future.set_exception(error)
        else:
            at = 0
            for items, future in group:
                if not future.done():
                    future.set_result(rows[at : at + len(items)])
                at += len(items)
        finally:
            self._in_flight[lane] -= 1
            self._send_waiting(lane)

    async def _call(self, items: list[Any], lane: Lane) -> Any:
        """One actor call, retried on a successor when the actor dies before it answers."""
        error: RayActorError | None = None
        for attempt in range(self._attempts):
            generation = self._generation
            try:
                actor, generation = await self._current()
                rows, retiring = await actor.infer.remote(items, lane)
            except RayActorError as lost:
                log.warning("model actor %s#%d lost (%s); retrying", self.name, generation, lost)
                self._forget(generation)
                error = lost
                await asyncio.sleep(0.1 * attempt)
                continue
            if retiring and generation == self._generation and self._replacing is None:
                self._replacing = asyncio.create_task(self._replace(actor, generation))
            return rows
        raise InferenceUnavailable(f"no actor could serve {self.spec.model_id} ({self._attempts} tries): {error}")

    async def stats(self) -> dict[str, Any]:
        actor, _ = await self._current()
        return await actor.stats.remote()

    async def close(self, kill: bool = False) -> None:
        """Wait for a replacement in progress; `kill` also ends the current actor (it is shared: tests, swaps)."""
        while self._replacing is not None:
            await self._replacing
        if kill and self._actor is not None:
            ray.kill(self._actor)
            self._actor = None

    @property
    def name(self) -> str:
        """Its actors' name, less the `#generation` suffix."""
        return self._name or f"model:{self._task}:{self.spec.model_id}"

    async def _current(self) -> tuple[ActorHandle, int]:
        async with self._lock:
            if self._actor is None:
                self._actor, self._generation = await self._start(self._generation)
            return self._actor, self._generation

    def _forget(self, generation: int) -> None:
        """The actor of `generation` is gone; the next request finds or starts a successor."""
        if generation == self._generation:
            self._actor = None

    async def _start(self, after: int) -> tuple[ActorHandle, int]:
        """Join the newest live actor newer than generation `after` (another process may have started it),
        else start generation `after + 1`; return once its model is loaded."""
        spec, prefix = self.spec, f"{self.name}#"
        live = [
            int(named["name"].removeprefix(prefix))
            for named in ray.util.list_named_actors(all_namespaces=True)
            if named["namespace"] == NAMESPACE and named["name"].startswith(prefix)
        ]
        generation = max((g for g in live if g > after), default=after + 1)
        actor = ModelActor.options(
            name=f"{prefix}{generation}",
            namespace=NAMESPACE,
            get_if_exists=True,
            max_concurrency=1024,
            max_restarts=0,
            **self._options,
        ).remote(spec, self._method, *self._args)
        try:
            await asyncio.wait_for(actor.stats.remote(), self._start_timeout_s)
        except (TimeoutError, GetTimeoutError) as error:
            ray.kill(actor)
            raise InferenceUnavailable(
                f"model actor for {spec.model_id} did not start in {self._start_timeout_s:.0f} s: does the cluster "
                f"have {self._options} free?"
            ) from error
        return actor, generation

    async def _replace(self, old: ActorHandle, generation: int) -> None:
        """Start the successor while the old actor keeps serving, switch, then drain and kill the old one."""
        try:
            successor, successor_generation = await self._start(generation)
            async with self._lock:
                if self._generation == generation:
                    self._actor, self._generation = successor, successor_generation
            await old.drain.remote(self._quiet_s)
            ray.kill(old)
        except (RayActorError, InferenceUnavailable) as error:
            # No successor: the old actor keeps serving and retires again after its next batch. Old one
            # already gone: its requests were retried.
            log.warning("replacing %s#%d: %s", self.name, generation, error)
        finally:
            self._replacing = None


class EmbedderClient(ModelPool):
    """Text embeddings through the `embed_text` model actor; the search endpoint and the job worker use it."""

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(Task.EMBED_TEXT, model, method="embed", **options)

    async def embed(self, texts: Sequence[str], lane: Lane = "interactive") -> np.ndarray:
        """Unit-length float32 rows [len(texts), dimension], computed by the actor for these very texts."""
        if not texts:
            return np.zeros((0, self.spec.dimension or 0), np.float32)
        return await self.infer(list(texts), lane)
