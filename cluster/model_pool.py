"""How a process reaches the model actor of one model (cluster/model_actor.py): a pool that finds it by name or
starts it, coalesces the process's concurrent requests into few actor calls (a Ray call costs about as much CPU as
the forward of a short query), replaces it when it dies or wears out, and retries what was lost.

Actors are named `model:{task}:{model_id}#{generation}` in the "scopix" namespace, so the API and the job
worker share one per model. They are not detached: an actor fate-shares with the process that created it,
so no actor outlives every process that uses it holding GPU memory or running old code after a deploy; if
its owner exits, the other processes' pools see it die and start a successor, as for any other death.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Sequence
from typing import Any, cast

import ray
from ray.actor import ActorClass, ActorHandle
from ray.exceptions import GetTimeoutError, RayActorError

from cluster import tracing
from cluster.model_actor import LANES, Batching, Lane, ModelActor, Recycling
from models.registry import ModelSpec, ModelUnavailable, Task, resolve

log = logging.getLogger(__name__)

NAMESPACE = "scopix"


class InferenceUnavailable(Exception):
    """No model actor can serve now (model missing, actor failing to start or dying): retry the job later."""


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
        self._task, self._model, self._name = Task(task), model, name
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
        self._provenance: dict[str, str] | None = None
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

    async def provenance(self) -> dict[str, str]:
        """{"model_id", "revision"} of the model this pool serves, which every output records; a local directory's
        revision is the digest of its weights, known only once an actor has loaded it."""
        if self._provenance is None:
            spec = self.spec
            revision = spec.revision or (await self.stats())["revision"]
            self._provenance = {"model_id": spec.model_id, "revision": revision}
        return self._provenance

    @property
    def actor(self) -> ActorHandle | None:
        """The actor requests go to now; None before the first request or after it was lost."""
        return self._actor

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
        actor_class = cast("ActorClass[ModelActor]", ModelActor)  # mypy does not apply ray.remote to a class
        created = actor_class.options(
            name=f"{prefix}{generation}",
            namespace=NAMESPACE,
            get_if_exists=True,
            max_concurrency=1024,
            max_restarts=0,
            **self._options,
        ).remote(spec, *self._args)
        actor = cast("ActorHandle[ModelActor]", created)  # Ray types remote() as a handle or the class: a handle
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
