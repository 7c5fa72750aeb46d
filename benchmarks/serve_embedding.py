"""The text embedder as a Ray Serve deployment: the alternative to the model pool's replicas that
benchmarks/embedding.py measures against it (`--impl serve`). A prototype, not a way the service runs: Serve has one
FIFO queue per replica (@serve.batch), so it has no interactive lane ahead of the batch lane.

Needs Ray Serve's extra dependencies (`pip install "ray[serve]"`, as in the `bench` extra).
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from models.registry import ModelSpec, load

BATCH = 32


@serve.deployment(max_ongoing_requests=2 * BATCH)
class ServeEmbedder:
    """One replica: the model, and Serve's batching of single-text requests into forwards of up to BATCH."""

    def __init__(self, spec: ModelSpec, threads: int) -> None:
        self._model = load(spec, device="cpu", threads=threads)

    @serve.batch(max_batch_size=BATCH, batch_wait_timeout_s=0.005)
    async def _embed(self, texts: list[str]) -> list[np.ndarray]:
        return list(await asyncio.to_thread(self._model.predict, texts))

    async def __call__(self, text: str) -> np.ndarray:
        return await self._embed(text)


def start(spec: ModelSpec, replicas: int, threads: int, num_cpus: float, **autoscaling: Any) -> DeploymentHandle:
    """Deploy `replicas` replicas (or, given min_replicas/max_replicas..., an autoscaled range) as an application
    of its own, without Serve's HTTP proxy; returns its handle once every replica is up."""
    serve.start(proxy_location="Disabled")
    options: dict[str, Any] = {"name": f"embed-{replicas}", "ray_actor_options": {"num_cpus": num_cpus}}
    if autoscaling:
        options["autoscaling_config"] = autoscaling
    else:
        options["num_replicas"] = replicas
    app = ServeEmbedder.options(**options).bind(spec, threads)
    return serve.run(app, name=f"embed-{replicas}", route_prefix=None)


def stop() -> None:
    serve.shutdown()
