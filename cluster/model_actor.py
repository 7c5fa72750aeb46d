"""The model actor: one Ray actor holds one loaded model and batches the requests of every caller into calls of the
model's `predict`, whatever its task (models/base.py); cluster/model_pool.py is how a process reaches it.

Requests queue in two lanes: `interactive` (a search query waiting on an HTTP response) is served first, in batches
of up to `max_batch_size`; `batch` (chunks of a document job) in bigger ones, but no bigger than the model gets
through in `batch_lane_max_batch_s`, so that an interactive request never waits long for a running one. A lone
request at an idle actor starts at once; requests queued together wait up to their lane's `max_wait_ms` for a full
batch. The prediction runs in a thread (one per copy, for a model holding several), so requests keep queueing
meanwhile. After each batch the actor says whether it is retiring (`Recycling`), so that its pools replace it. A
model runs as several such actors (replicas, cluster/model_replica.py); each keeps its own lanes, and reports how
long it has been idle, whoever its callers are, so that a pool retires an extra replica only when nobody uses it.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import psutil
import ray

from models.registry import ModelSpec, load

Lane = Literal["interactive", "batch"]
LANES: tuple[Lane, ...] = ("interactive", "batch")  # in priority order


@dataclass(frozen=True)
class Batching:
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    batch_lane_max_batch_size: int = 64
    batch_lane_max_wait_ms: float = 50.0
    # A batch-lane batch is cut to what the model gets through in about this long (its recent seconds per item),
    # since an interactive request that arrives meanwhile waits for the running prediction: on a CPU, 64 long
    # texts take seconds, on a GPU milliseconds. None: only batch_lane_max_batch_size bounds it.
    batch_lane_max_batch_s: float | None = 0.25


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
        """The rows of the items from `start` on; parts may come in any order (predictions run side by side)."""
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
    """Holds one model; `infer` returns the caller's own outputs and whether this actor is retiring."""

    def __init__(
        self, spec: ModelSpec, batching: Batching, recycling: Recycling, device: str, threads: int | None
    ) -> None:
        self._model = load(spec, device=device, threads=threads)
        self._batching = batching
        self._recycling = recycling
        self._slots = self._model.concurrency  # predictions at once (a model holding copies of itself: several)
        self._executor = ThreadPoolExecutor(max_workers=self._slots, thread_name_prefix="predict")
        self._queues: dict[Lane, collections.deque[_Request]] = {lane: collections.deque() for lane in LANES}
        self._queued = 0
        self._arrived = asyncio.Event()  # a request arrived or a prediction ended: the batcher looks again
        self._batcher: asyncio.Task[None] | None = None
        self._running = 0  # predictions in progress
        self._predictions: set[asyncio.Task[None]] = set()
        self._last_arrival = time.monotonic()
        self._batches = 0
        self._items = 0
        self._recent_sizes: collections.deque[int] = collections.deque(maxlen=100)
        self._histogram: collections.Counter[int] = collections.Counter()
        self._retiring = False
        self._item_s: float | None = None  # recent seconds per item of a batch-lane prediction (moving average)

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
            "idle_s": 0.0 if self._queued or self._running else time.monotonic() - self._last_arrival,
            "rss_mb": psutil.Process().memory_info().rss / 2**20,
            "retiring": self._retiring,
            "batch_lane_item_s": self._item_s,
        }

    async def drain(self, quiet_s: float) -> None:
        """Return once nothing is queued or running and nothing has arrived for `quiet_s`."""
        while self._queued or self._running or time.monotonic() - self._last_arrival < quiet_s:
            await asyncio.sleep(0.05)

    async def _run(self) -> None:
        while True:
            if self._queued and self._running < self._slots:
                size = await self._gathered()
                batch_lane_only = not self._queues["interactive"]
                batch = self._take(size)
                if batch:
                    self._running += 1
                    prediction = asyncio.create_task(self._predict(batch, batch_lane_only))
                    self._predictions.add(prediction)
                    prediction.add_done_callback(self._predictions.discard)
                continue
            self._arrived.clear()
            await self._arrived.wait()

    async def _predict(self, batch: list[tuple[_Request, int, int]], batch_lane_only: bool) -> None:
        """Run one batch in a thread and hand each request its rows; a batch of the batch lane alone updates the
        seconds per item that cut the lane's batches (interactive items, queries, are much shorter)."""
        items = [item for request, start, end in batch for item in request.items[start:end]]
        started = time.monotonic()
        try:
            rows = await asyncio.get_running_loop().run_in_executor(self._executor, self._model.predict, items)
        except Exception as error:
            for request, _, _ in batch:
                if not request.future.done():
                    request.future.set_exception(error)
        else:
            if batch_lane_only:
                item_s = (time.monotonic() - started) / len(items)
                self._item_s = item_s if self._item_s is None else 0.7 * self._item_s + 0.3 * item_s
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
        return self._batch_lane_size(), b.batch_lane_max_wait_ms / 1000

    def _batch_lane_size(self) -> int:
        """The most batch-lane items one batch takes: its maximum, cut to the lane's time budget."""
        b = self._batching
        if b.batch_lane_max_batch_s is None or not self._item_s:
            return b.batch_lane_max_batch_size
        return max(1, min(b.batch_lane_max_batch_size, int(b.batch_lane_max_batch_s / self._item_s)))

    async def _gathered(self) -> int:
        """The next batch's size, once it is worth starting. A model running predictions side by side gives a free
        slot its share of the queue at once. A model with one prediction at a time starts a lone request at once
        (waiting would only add latency, and what arrives meanwhile forms the next batch); only when several
        requests are queued together does it wait for a full batch, at most until the oldest has waited its lane's
        maximum."""
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
        """Up to `size` items, interactive first, then batch-lane items within that lane's budget (they fill an
        interactive batch, but never make it slow); a request bigger than the room left is split."""
        batch: list[tuple[_Request, int, int]] = []
        room = size
        for lane, queue in self._queues.items():
            lane_room = room if lane == "interactive" else min(room, self._batch_lane_size())
            while queue and lane_room:
                request = queue[0]
                left = len(request.items) - request.offset
                if request.future.done():  # its caller was cancelled, or an earlier part failed
                    queue.popleft()
                    self._queued -= left
                    continue
                taken = min(lane_room, left)
                batch.append((request, request.offset, request.offset + taken))
                request.offset += taken
                room -= taken
                lane_room -= taken
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
