"""Steps that exist only for the engine tests. They run in Ray worker processes, so they keep
their state where every process sees it: marker objects in S3 under the file's prefix."""

from __future__ import annotations

import time
from typing import Any

from pipelines.engine.step import FileRef, Step
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


# Run by the session's engine.
TEST_STEPS = {
    "flaky": Step("flaky", "crawl_status", run=flaky, columns=("visible_text",)),
    "sleepy": Step("sleepy", "crawl_status", run=sleepy),
}
# Run only by the engines of the lost-worker test (the one it kills, the one that takes over).
STALL_STEPS = {"stall": Step("stall", "crawl_status", run=stall, columns=("visible_text",))}
