"""Every step runs within a time and a memory limit, enforced where it runs (the Ray worker): past either, its job
fails at once with the reason, and the engine and Ray carry on. A permanent error fails at once in plain words;
an internal one is retried, and its words (a library's, a client's) stay in the log."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from pipelines.engine.runner import INTERNAL_ERROR, Engine, EngineConfig
from store import jobs
from tests.support.api_calls import until_terminal, uploaded
from tests.support.callers import Caller
from tests.support.engine_steps import LIMITED_STEPS
from tests.support.file_rows import insert_file
from tests.support.lone_engine import wait_for

pytestmark = pytest.mark.integration

# Each test asks for the server before the engine: the server's start replaces the database pool, which must not
# happen under a session engine already claiming jobs.


async def run_limited(
    engine: Engine, caller: Caller, steps: tuple[str, ...], step_seconds: float = 600, step_memory_mib: int = 2048
) -> list[dict]:
    """Run the steps one after the other (3 attempts each) on an engine of their own with the limits given; the
    last row of each job."""
    config = EngineConfig(
        max_in_flight=1,
        lease_seconds=10,
        poll_seconds=0.05,
        backoff_base_seconds=0.2,
        step_seconds=step_seconds,
        step_memory_mib=step_memory_mib,
    )
    limited = Engine(engine.location, LIMITED_STEPS, config)
    stop = asyncio.Event()
    running = asyncio.create_task(limited.run(stop))
    try:
        ended = []
        for step in steps:
            file_id = await insert_file(caller.tenant_id, f"{step}.txt")
            job_id, _ = await jobs.enqueue(file_id, caller.tenant_id, step, max_attempts=3)
            limited.wake()
            ended.append(await wait_for(job_id, file_id, lambda job: job["status"] in jobs.STATUSES[2:], 90))
        return ended
    finally:
        stop.set()
        await running


async def test_a_step_past_its_time_limit_is_killed_and_fails_once_with_the_reason(server, alice, engine):
    # Long enough for the next step to start a fresh Ray worker on a loaded machine.
    overrun, after = await run_limited(engine, alice, ("overrun", "where"), step_seconds=15)

    assert (overrun["status"], overrun["attempts"]) == ("failed", 1), overrun
    assert overrun["error"] == "overrun timed out after 15 s"
    # The engine and Ray carry on (the killed worker is replaced).
    assert (after["status"], after["attempts"]) == ("completed", 1), after


async def test_a_model_call_past_its_time_limit_fails_once_with_the_reason(server, alice, engine):
    (dawdle,) = await run_limited(engine, alice, ("dawdle",), step_seconds=1)

    assert (dawdle["status"], dawdle["attempts"], dawdle["error"]) == ("failed", 1, "dawdle timed out after 1 s")


async def test_a_step_past_its_memory_limit_fails_once_with_the_reason(server, alice, engine):
    hog, after = await run_limited(engine, alice, ("hog", "where"), step_memory_mib=64)

    assert (hog["status"], hog["attempts"]) == ("failed", 1), hog
    assert hog["error"] == "exceeded 64 MiB of memory"
    assert (after["status"], after["attempts"]) == ("completed", 1), after


async def test_an_internal_error_is_retried_and_its_words_stay_in_the_log(server, alice, engine, caplog):
    (leaky,) = await run_limited(engine, alice, ("leaky",))

    assert (leaky["status"], leaky["attempts"]) == ("failed", 3), leaky
    assert leaky["error"] == INTERNAL_ERROR
    assert "AccessDenied" in caplog.text


async def test_a_broken_pdf_fails_once_in_plain_words(client, alice, engine):
    broken = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage"
    file_id = await uploaded(client, alice, broken, "broken.pdf")
    final = await until_terminal(client, alice, file_id)
    [job] = await jobs.jobs_of_file(uuid.UUID(file_id))

    assert (job.status, job.attempts, job.error) == ("failed", 1, "The PDF is corrupt: no page could be found in it.")
    assert final["error_message"] == "The PDF is corrupt: no page could be found in it."


async def test_a_step_within_its_memory_limit_completes(server, alice, engine):
    (hog,) = await run_limited(engine, alice, ("hog",), step_memory_mib=1024)

    assert (hog["status"], hog["attempts"]) == ("completed", 1), hog
