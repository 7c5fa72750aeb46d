"""One replica of a model: a slot of a model pool (cluster/model_pool.py) whose actor (cluster/model_actor.py) it
finds by name or starts, replaces when it wears out, and forgets when it dies.

A replica's actors are named `model:{task}:{model_id}@{slot}#{generation}` in the "scopix" namespace, so the
processes that use a model share its replicas slot by slot: each finds the newest live generation of a slot or
starts the next one. Ray places an actor on any node with the resources it asks for, so a replica lost with its
node comes back on another one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, cast

import ray
from ray.actor import ActorClass, ActorHandle
from ray.exceptions import GetTimeoutError, RayActorError

from cluster.model_actor import Batching, ModelActor, Recycling
from models.registry import ModelSpec

log = logging.getLogger(__name__)

NAMESPACE = "scopix"


class InferenceUnavailable(Exception):
    """No model actor can serve now (model missing, actor failing to start or dying): retry the job later."""


@dataclass(frozen=True)
class Launch:
    """What every replica of one pool starts with: the model, the actor's Ray options and arguments."""

    spec: ModelSpec
    options: dict[str, Any]  # num_cpus, num_gpus, memory, resources
    batching: Batching
    recycling: Recycling
    threads: int | None
    start_timeout_s: float

    @property
    def device(self) -> str:
        return "cuda" if self.options.get("num_gpus", 0) > 0 else "cpu"


class Replica:
    """A slot of a pool. `load` counts the items this process has sent it and not had back (the pool sends to
    the least loaded), `last_sent` when it last sent one (an extra replica idle here may be retired)."""

    def __init__(self, name: str, slot: int, launch: Launch) -> None:
        self.slot = slot
        self.prefix = f"{name}@{slot}#"
        self._launch = launch
        self.actor: ActorHandle | None = None
        self.generation = -1  # of self.actor; a successor gets a higher one
        self.load = 0
        self.last_sent = time.monotonic()
        self._lock = asyncio.Lock()
        self._replacing: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.actor is not None

    async def current(self) -> tuple[ActorHandle, int]:
        """The slot's actor, found or started (once its model is loaded)."""
        async with self._lock:
            if self.actor is None:
                self.actor, self.generation = await self._start(self.generation)
            return self.actor, self.generation

    def forget(self, generation: int) -> None:
        """The actor of `generation` is gone; the next request finds or starts a successor."""
        if generation == self.generation:
            self.actor = None

    def retire(self, actor: ActorHandle, generation: int) -> None:
        """The actor said it is retiring: replace it in the background, once."""
        if generation == self.generation and self._replacing is None:
            self._replacing = asyncio.create_task(self._replace(actor, generation))

    async def stop(self) -> None:
        """End the slot's actor (an idle extra replica, or a test's cleanup)."""
        async with self._lock:
            if self.actor is not None:
                ray.kill(self.actor)
                self.actor = None

    async def settled(self) -> None:
        """Return once no replacement is in progress."""
        while self._replacing is not None:
            await self._replacing

    async def _start(self, after: int) -> tuple[ActorHandle, int]:
        """Join the newest live actor of the slot newer than generation `after` (another process may have started
        it), else start generation `after + 1`; return once its model is loaded."""
        launch, prefix = self._launch, self.prefix
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
            **launch.options,
        ).remote(launch.spec, launch.batching, launch.recycling, launch.device, launch.threads)
        actor = cast("ActorHandle[ModelActor]", created)  # Ray types remote() as a handle or the class: a handle
        try:
            await asyncio.wait_for(actor.stats.remote(), launch.start_timeout_s)
        except (TimeoutError, GetTimeoutError) as error:
            ray.kill(actor)
            raise InferenceUnavailable(
                f"model actor for {launch.spec.model_id} did not start in {launch.start_timeout_s:.0f} s: does the "
                f"cluster have {launch.options} free?"
            ) from error
        return actor, generation

    async def _replace(self, old: ActorHandle, generation: int) -> None:
        """Start the successor while the old actor keeps serving, switch, then drain and kill the old one."""
        try:
            successor, successor_generation = await self._start(generation)
            async with self._lock:
                if self.generation == generation:
                    self.actor, self.generation = successor, successor_generation
            await old.drain.remote(max(1.0, self._launch.batching.batch_lane_max_wait_ms / 1000 * 4))
            ray.kill(old)
        except (RayActorError, InferenceUnavailable) as error:
            # No successor: the old actor keeps serving and retires again after its next batch. Old one
            # already gone: its requests were retried.
            log.warning("replacing %s%d: %s", self.prefix, generation, error)
        finally:
            self._replacing = None
