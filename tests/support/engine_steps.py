"""Steps that exist only for the engine tests. The Ray ones run in Ray worker processes, so they keep
their state where every process sees it: marker objects in S3 under the file's prefix."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from typing import Any

from pipelines.document.plan import embed_chunks_step
from pipelines.engine.step import FileRef, InProcess, RayTask, Result, Step
from pipelines.inference import configured
from store.settings import Settings
from store.step_objects import S3Location, _client, put


def _markers(location: S3Location, file: FileRef, kind: str) -> int:
    prefix = f"{file.object_key.rsplit('/', 1)[0]}/test-{kind}/"
    listed = _client(location).list_objects_v2(Bucket=location.bucket, Prefix=prefix)
    count = listed.get("KeyCount", 0)
    put(location, f"{prefix}{count}", b"", "application/octet-stream")
    return count


def flaky(location: S3Location, file: FileRef) -> dict[str, Any]:
    """Fails on its first two attempts, then succeeds."""
    attempt = _markers(location, file, "flaky")
    if attempt < 2:
        raise RuntimeError(f"transient failure on attempt {attempt + 1}")
    return {"visible_text": f"succeeded on attempt {attempt + 1}"}


def stall(location: S3Location, file: FileRef) -> dict[str, Any]:
    """Hangs on its first attempt (long enough for its worker to be killed), then succeeds."""
    if _markers(location, file, "stall") == 0:
        time.sleep(120)
    return {"visible_text": "finished after a worker was lost"}


def sleepy(location: S3Location, file: FileRef) -> dict[str, Any]:
    time.sleep(1.0)
    return {}


def overrun(location: S3Location, file: FileRef) -> dict[str, Any]:
    """Runs far past any time limit a test gives it."""
    time.sleep(300)
    return {}


def hog(location: S3Location, file: FileRef) -> dict[str, Any]:
    """Allocates (and touches) far more memory than a test's limit allows; says where it ran when it is let."""
    held = bytearray(512 * 1024 * 1024)
    held[::4096] = b"\x01" * len(held[::4096])
    return {"visible_text": f"allocated in {os.getpid()}"}


def leaky(location: S3Location, file: FileRef) -> dict[str, Any]:
    """Fails as a client library does, with words for the operator's eyes only."""
    raise RuntimeError("An error occurred (AccessDenied) calling GetObject: bucket scopix-internal, key secret/1")


def where(location: S3Location, file: FileRef) -> dict[str, Any]:
    return {"visible_text": f"ran in {os.getpid()}"}


async def dawdle(file: FileRef) -> dict[str, Any]:
    """Waits in the engine's process (as on a model actor) far past any time limit a test gives it."""
    await asyncio.sleep(300)
    return {}


# Run only by the engines of the tests of step limits and failures.
LIMITED_STEPS = {
    **{
        name: Step(name, "crawl_status", RayTask(function), columns=("visible_text",))
        for name, function in (("overrun", overrun), ("hog", hog), ("leaky", leaky), ("where", where))
    },
    "dawdle": Step("dawdle", "crawl_status", InProcess(dawdle)),
}
# Run by the session's engine.
TEST_STEPS = {
    "flaky": Step("flaky", "crawl_status", RayTask(flaky), columns=("visible_text",)),
    "sleepy": Step("sleepy", "crawl_status", RayTask(sleepy)),
}
# Run only by the engines of the lost-worker test (the one it kills, the one that takes over).
STALL_STEPS = {"stall": Step("stall", "crawl_status", RayTask(stall), columns=("visible_text",))}

EMBED_CHUNKS_HELD = "embed_chunks_held"


def embedding_chunks(settings: Settings, *, hold: bool) -> dict[str, Step]:
    """The real `embed_chunks` step (its model actor reserves no CPU), under a name of its own. `hold`: once its save
    has written the vectors, inside the transaction that completes the job, it prints "saved" and never returns:
    the crash test kills its process there."""
    embedders = configured.text_embedders(settings.replace(models__actors__num_cpus=0.0))
    step = embed_chunks_step(embedders)
    save = step.save
    assert save is not None

    async def save_and_hold(file: FileRef, result: Result) -> None:
        await save(file, result)
        print("saved", flush=True)
        await asyncio.Event().wait()

    return {EMBED_CHUNKS_HELD: replace(step, name=EMBED_CHUNKS_HELD, save=save_and_hold if hold else save)}
