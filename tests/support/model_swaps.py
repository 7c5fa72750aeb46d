"""What the model swap tests share: the real `scopix` command in its own process, an engine that runs the swap's
upkeep (the session's engine runs none, so only these flip), and waiting for a flip."""

from __future__ import annotations

import asyncio
import os
import time

from pipelines.catalog import steps_for
from pipelines.engine.runner import Engine, EngineConfig
from pipelines.inference.swap import SwapKeeper
from store import model_state
from store.settings import Settings, environment
from store.step_objects import S3Location
from tests.support.scopix_command import SCOPIX


async def scopix(settings: Settings, *args: str) -> tuple[int, str, str]:
    """The real command, in its own process with the tests' settings (the test's event loop keeps serving the API
    meanwhile)."""
    process = await asyncio.create_subprocess_exec(
        SCOPIX,
        *args,
        env={**os.environ, **environment(settings), "SCOPIX_LOG_LEVEL": "warning"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    return process.returncode or 0, out.decode(), err.decode()


class Running:
    """A dedicated engine with the production steps and the swap's upkeep, started and stopped at will."""

    def __init__(self, settings, **config: float) -> None:
        options = {"max_in_flight": 2, "lease_seconds": 10, "poll_seconds": 0.05, "upkeep_seconds": 0.1, **config}
        self.engine = Engine(
            S3Location.from_settings(settings),
            steps_for(settings),
            EngineConfig(**options),  # type: ignore[arg-type]
            upkeep=(SwapKeeper(),),
        )
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.engine.run(self._stop))

    async def stop(self) -> None:
        self._stop.set()
        await self._task


async def until_flipped(task: str, target: str, seconds: float = 120) -> float:
    """When the database made `target` the task's active model."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = await model_state.get(task)
        if state is not None and state.active_model_id == target and state.target_model_id is None:
            return time.monotonic()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{task}: {target} not active after {seconds} s: {state}")
