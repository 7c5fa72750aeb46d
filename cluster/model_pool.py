"""How a process reaches the replicas of one model (cluster/model_replica.py): a pool that coalesces the process's
concurrent requests into few actor calls (a Ray call costs about as much CPU as the forward of a short query),
sends each to the least loaded replica, retries on another what a dying replica lost, and scales the replicas
between the task's minimum and maximum: one more while a full batch per replica waits, one fewer once an extra
replica has had no request, from anyone, for its idle time.

Actors are not detached: an actor fate-shares with the process that created it, so no actor outlives every
process that uses it holding GPU memory or running old code after a deploy; if its owner exits, the other
processes' pools see it die and start a successor, as for any other death.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ray.actor import ActorHandle
from ray.exceptions import RayActorError

from cluster import tracing
from cluster.model_actor import LANES, Batching, Lane, Recycling
from cluster.model_replica import NAMESPACE, InferenceUnavailable, Launch, Replica
from models.registry import ModelSpec, ModelUnavailable, Task, resolve

__all__ = ["NAMESPACE", "InferenceUnavailable", "ModelPool", "Scaling"]

log = logging.getLogger(__name__)
MIB = 1024 * 1024


@dataclass(frozen=True)
class Scaling:
    """How many replicas a pool keeps: `min_replicas` always (a lost one is replaced at once), up to
    `max_replicas` while requests queue, and an extra one retired after `idle_s` without a request."""

    min_replicas: int = 1
    max_replicas: int = 1
    idle_s: float = 60.0


class ModelPool:
    """The handle every process uses to reach the replicas of one model: finds or starts them, spreads requests
    over them, retries requests lost with a dying replica on another, and lets each replace its actor when it
    retires without failing requests in flight.

    Settings: `num_cpus`/`num_gpus` reserve each replica's share (fractional: on 2 cores an actor holding every
    CPU starves Ray's tasks), `memory_mib` Ray's memory resource and `resources` custom ones (to place replicas
    on the nodes that have them), `threads` the model's CPU threads per replica (None: all usable; torch's
    threads, or one per copy for OCR), `batching` each replica's queue, `recycling` when to retire an actor,
    `scaling` how many replicas. The first pool to start a replica decides its settings."""

    def __init__(
        self,
        task: Task | str,
        model: str | None = None,
        *,
        num_cpus: float = 0.5,
        num_gpus: float = 0.0,
        memory_mib: int | None = None,
        resources: Mapping[str, float] | None = None,
        threads: int | None = None,
        batching: Batching = Batching(),
        recycling: Recycling = Recycling(),
        scaling: Scaling = Scaling(),
        calls_in_flight: int = 2,
        attempts: int = 3,
        lost_retry_s: float = 30.0,
        start_timeout_s: float = 300.0,
        name: str | None = None,
    ) -> None:
        self._task, self._model, self._name = Task(task), model, name
        self._options: dict[str, Any] = {"num_cpus": num_cpus, "num_gpus": num_gpus}
        if memory_mib is not None:
            self._options["memory"] = memory_mib * MIB
        if resources:
            self._options["resources"] = dict(resources)
        self._batching, self._recycling, self._threads = batching, recycling, threads
        self._scaling = scaling
        self._waiting: dict[Lane, collections.deque[tuple[Sequence[Any], asyncio.Future[Any]]]] = {
            lane: collections.deque() for lane in LANES
        }
        self._group_size = {"interactive": batching.max_batch_size, "batch": batching.batch_lane_max_batch_size}
        self._calls_in_flight = calls_in_flight
        self._in_flight = dict.fromkeys(LANES, 0)
        self._tasks: set[asyncio.Task[Any]] = set()  # sends, replica starts, the idle check
        self._attempts, self._lost_retry_s, self._start_timeout_s = attempts, lost_retry_s, start_timeout_s
        self._spec: ModelSpec | None = None
        self._provenance: dict[str, str] | None = None
        self._slots: list[Replica] = []  # every slot up to max_replicas, made on first use
        self._active: list[Replica] = []  # the slots this process sends to (started or starting)
        self._scaling_up = False
        self._idle_check: asyncio.Task[None] | None = None

    @property
    def spec(self) -> ModelSpec:
        """The resolved model; raises InferenceUnavailable when it is unknown or missing."""
        if self._spec is None:
            try:
                self._spec = resolve(self._task, self._model)
            except ModelUnavailable as error:
                raise InferenceUnavailable(str(error)) from error
        return self._spec

    async def provenance(self) -> dict[str, str]:
        """{"model_id", "revision"} of the model this pool serves, which every output records; a local directory's
        revision is the digest of its weights, known only once an actor has loaded it."""
        if self._provenance is None:
            spec = self.spec
            revision = spec.revision or (await self.stats())["revision"]
            self._provenance = {"model_id": spec.model_id, "revision": revision}
        return self._provenance

    @property
    def actors(self) -> list[ActorHandle]:
        """The actors of the replicas requests go to now, by slot; none before the first request."""
        return [replica.actor for replica in self._active if replica.actor is not None]

    async def infer(self, items: Sequence[Any], lane: Lane = "interactive") -> Any:
        """The model's outputs for `items` (non-empty), in order; raises InferenceUnavailable, never returns less."""
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
        """Coalesce this process's waiting requests into actor calls, at most `calls_in_flight` per lane and ready
        replica: alone, a request leaves at once; under load one call carries many (a Ray call costs about as much
        CPU as the forward of a short query, so one call per query would halve the throughput on a CPU). Each lane
        has its own calls, so a query never waits behind the batch lane here; each replica serves it first."""
        waiting = self._waiting[lane]
        calls = self._calls_in_flight * max(1, sum(replica.ready for replica in self._active))
        left = sum(len(items) for items, _ in waiting) if self._in_flight[lane] < calls else 0  # none can go out
        while waiting and self._in_flight[lane] < calls:
            # A call carries its share of what waits, so that the replicas get even loads; not one full batch for
            # one replica and the rest for another.
            limit = min(self._group_size[lane], -(-left // calls))
            group = [waiting.popleft()]
            size = len(group[0][0])
            while waiting and size + len(waiting[0][0]) <= limit:
                size += len(waiting[0][0])
                group.append(waiting.popleft())
            left -= size
            self._in_flight[lane] += 1
            self._spawn(self._send(lane, group))
        self._scale_up_if_queued()

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
        """One actor call to the least loaded replica, retried on another when it dies before it answers: at least
        `attempts` times and for at least `lost_retry_s`, backing off. A node that dies takes Ray seconds to declare
        dead, and a successor placed on it meanwhile dies too; the call outlasts that rather than failing its job."""
        deadline: float | None = None
        tries = 0
        while True:
            replica = self._pick()
            generation = replica.generation
            replica.load += len(items)
            replica.last_sent = time.monotonic()
            try:
                actor, generation = await replica.current()
                rows, retiring = await actor.infer.remote(items, lane)
            except RayActorError as lost:
                log.warning("model replica %s%d lost (%s); retrying", replica.prefix, generation, lost)
                self._lost(replica, generation)
                tries += 1
                deadline = deadline or time.monotonic() + self._lost_retry_s
                if tries >= self._attempts and time.monotonic() >= deadline:
                    raise InferenceUnavailable(
                        f"no actor could serve {self.spec.model_id} ({tries} tries in {self._lost_retry_s:.0f} s):"
                        f" {lost}"
                    ) from lost
                await asyncio.sleep(min(0.1 * 2 ** (tries - 1), 5.0))
                continue
            finally:
                replica.load -= len(items)
            if retiring:
                replica.retire(actor, generation)
            return rows

    def _pick(self) -> Replica:
        """The replica to send to: a ready one before one still starting, then the least loaded, then the one
        idle longest. The first request activates the minimum and starts all but the one it waits for."""
        if not self._active:
            if not self._slots:
                launch = Launch(
                    self.spec, self._options, self._batching, self._recycling, self._threads, self._start_timeout_s
                )
                self._slots = [Replica(self.name, slot, launch) for slot in range(self._scaling.max_replicas)]
            self._active = self._slots[: self._scaling.min_replicas]
            for replica in self._active[1:]:
                self._spawn(self._start(replica))
        return min(self._active, key=lambda replica: (not replica.ready, replica.load, replica.last_sent))

    def _lost(self, replica: Replica, generation: int) -> None:
        """A replica's actor died (or its node did): one of the minimum is started again at once (Ray places it
        where there is room), an extra one only if the queue asks for it again."""
        was_ready = replica.ready
        replica.forget(generation)
        if not was_ready or replica.ready or replica not in self._active:
            return  # another request saw it die first, or a successor is there already
        if self._active.index(replica) < self._scaling.min_replicas:
            self._spawn(self._start(replica))
        else:
            self._active.remove(replica)

    def _scale_up_if_queued(self) -> None:
        """One more replica, one at a time, while more than a full batch per replica is queued or in flight."""
        if self._scaling_up or not self._active or len(self._active) >= self._scaling.max_replicas:
            return
        queued = sum(len(items) for waiting in self._waiting.values() for items, _ in waiting)
        queued += sum(replica.load for replica in self._active)
        if queued <= self._batching.max_batch_size * len(self._active):
            return
        replica = next(slot for slot in self._slots if slot not in self._active)
        self._active.append(replica)
        self._scaling_up = True
        log.info("%s: %d items queued, starting replica %d", self.name, queued, replica.slot)
        self._spawn(self._start(replica))
        if self._idle_check is None:
            self._idle_check = self._spawn(self._retire_idle())

    async def _start(self, replica: Replica) -> None:
        """Start a replica in the background; once ready it takes its share of what waits."""
        try:
            await replica.current()
            replica.last_sent = time.monotonic()  # its idle time starts now, not when the pool made the slot
        except (InferenceUnavailable, RayActorError) as error:
            log.warning("starting %s: %s", replica.prefix, error)
            if replica in self._active[self._scaling.min_replicas :]:
                self._active.remove(replica)
        finally:
            if replica.slot >= self._scaling.min_replicas:
                self._scaling_up = False
        for lane in LANES:
            self._send_waiting(lane)

    async def _retire_idle(self) -> None:
        """While there are extra replicas: retire the newest one once neither this process nor any other has sent
        it anything for `idle_s` (its actor says; one still used elsewhere is only left by this process)."""
        idle_s = self._scaling.idle_s
        try:
            while len(self._active) > self._scaling.min_replicas:
                await asyncio.sleep(min(idle_s / 4, 5.0))
                replica = self._active[-1]
                if replica.load or not replica.ready or time.monotonic() - replica.last_sent < idle_s:
                    continue
                self._active.remove(replica)
                actor = replica.actor
                try:
                    idle_everywhere = actor is not None and (await actor.stats.remote())["idle_s"] >= idle_s
                except RayActorError:
                    idle_everywhere = False  # gone already
                if idle_everywhere:
                    log.info("%s: replica %d idle for %.0f s, retiring it", self.name, replica.slot, idle_s)
                    await replica.stop()
        finally:
            self._idle_check = None

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stats(self) -> dict[str, Any]:
        """The first replica's figures (its model's revision, its batches)."""
        actor, _ = await self._first().current()
        return await actor.stats.remote()

    async def replica_stats(self) -> list[dict[str, Any]]:
        """Each ready replica's figures, by slot."""
        return [await actor.stats.remote() for actor in self.actors]

    def _first(self) -> Replica:
        if not self._active:
            self._pick()
        return self._active[0]

    async def close(self, kill: bool = False) -> None:
        """Wait for replacements in progress and stop the idle check; `kill` also ends the replicas' actors (they
        are shared: tests, swaps)."""
        if self._idle_check is not None:
            self._idle_check.cancel()
        for replica in self._slots:
            await replica.settled()
        if kill:
            for replica in self._slots:
                await replica.stop()
            self._active = []

    @property
    def name(self) -> str:
        """Its actors' name, less the `@slot#generation` suffix."""
        return self._name or f"model:{self._task}:{self.spec.model_id}"
