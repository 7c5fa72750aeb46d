"""A job engine in its own process (run by the tests, then killed): joins the tests' Ray cluster
and database, runs the test steps with a short lease (`stall`, and `embed_chunks` held before its commit)."""

from __future__ import annotations

import asyncio
import sys

from cluster.runtime import ensure_ray
from pipelines.engine.runner import Engine, EngineConfig
from store.services import local_services
from store.step_objects import S3Location
from tests.support.engine_steps import STALL_STEPS, embedding_chunks


async def main(ray_address: str, lease_seconds: float) -> None:
    ensure_ray(ray_address)
    with local_services() as settings:
        steps = {**STALL_STEPS, **embedding_chunks(settings, hold=True)}
        engine = Engine(S3Location.from_settings(settings), steps, EngineConfig(lease_seconds=lease_seconds))
        print("ready", flush=True)
        await engine.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
