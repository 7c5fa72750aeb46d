"""The job engine on a real local Ray: images reach `completed` with their variants, retries,
a killed worker, lanes, and images that cannot be processed."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import struct
import subprocess
import sys
import time
import uuid
import zlib

import httpx
import pytest
from PIL import Image

from pipelines.engine.runner import Engine, EngineConfig
from pipelines.engine.step import FileRef, InProcess, Step
from store.rows import JobRow
from store.settings import environment
from tests.support import sample_files
from tests.support.api_calls import status, until_terminal, upload, uploaded
from tests.support.engine_steps import EMBED_CHUNKS_HELD, STALL_STEPS, embedding_chunks
from tests.support.file_rows import insert_file

pytestmark = pytest.mark.integration


def rotated_photo() -> bytes:
    """2000x1500 pixels stored, EXIF orientation 6 (displayed 1500x2000); a red band on the
    stored image's top edge ends up on the right edge when displayed."""
    image = Image.new("RGB", (2000, 1500), (20, 120, 200))
    image.paste((255, 0, 0), (0, 0, 2000, 150))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8769] = {0x9003: "2024:05:06 07:08:09"}
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


async def test_photo_reaches_completed_with_its_variants(client, alice, engine):
    response = await upload(client, alice, rotated_photo(), "site.jpg")
    body = response.json()
    assert body["status"] == "processing" and body["thumbnail_generation_started"] is True
    final = await until_terminal(client, alice, body["file_id"])
    assert final["unified_status"] == "completed"
    assert final["component_statuses"]["variant_status"] == "completed"
    assert final["processing_ids"] and final["retry_count"] == 0 and final["is_stuck"] is False

    detail = (await client.get(f"/api/v2/files/{body['file_id']}", headers=alice.headers)).json()
    assert detail["dimensions"] == {"width": 1500, "height": 2000}
    assert detail["format"] == "jpeg" and detail["variant_count"] == 5 and detail["blur_hash"]
    assert detail["content_created_at"].startswith("2024-05-06T07:08:09")
    assert detail["primary_status"] == "completed"
    expected = {"tiny_64": 64, "small_256": 256, "medium_750": 750, "large_1024": 1024}
    async with httpx.AsyncClient() as plain:
        for name, longest in expected.items():
            redirect = await client.get(f"/api/v2/files/{body['file_id']}/variant/{name}", headers=alice.headers)
            assert redirect.status_code == 302
            image = Image.open(io.BytesIO((await plain.get(redirect.headers["location"])).content))
            assert image.size == (round(longest * 1500 / 2000), longest), name
            red, green, _ = image.convert("RGB").getpixel((image.width - 1, image.height // 2))
            assert red > 200 and green < 80, "orientation applied: the band is on the right"
        for field in ("thumbnail_url", "medium_url", "full_url"):
            assert (await plain.get(detail[field])).status_code == 200
        original = await client.get(f"/api/v2/files/{body['file_id']}/variant/original", headers=alice.headers)
        assert (await plain.get(original.headers["location"])).content == rotated_photo()
    listed = (await client.get("/api/v2/files", headers=alice.headers)).json()["items"][0]
    assert listed["thumbnail_url"] and listed["variant_status"] == "completed"


async def test_variant_route_errors(client, alice, engine):
    document = await uploaded(client, alice, sample_files.pdf(), "m.pdf")
    response = await client.get(f"/api/v2/files/{document}/variant/small_256", headers=alice.headers)
    assert response.status_code == 400 and response.json()["code"] == "wrong_media_type"
    image = await uploaded(client, alice, sample_files.image(), "p.jpg")
    response = await client.get(f"/api/v2/files/{image}/variant/huge_9000", headers=alice.headers)
    assert response.status_code == 400
    trigger = await client.post(f"/api/v2/files/{document}/trigger-variants", headers=alice.headers)
    assert trigger.status_code == 400


def _png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid PNG whose header claims 900 megapixels (a few KB on disk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width * 3 + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


async def test_bombs_and_corrupt_images_end_failed_with_a_clear_error(client, alice, engine):
    photo = sample_files.image("JPEG", (800, 600))
    cases = {
        "bomb.png": (_png_bomb(), "pixels"),
        "truncated.jpg": (photo[: len(photo) // 2], "truncated"),
    }
    for filename, (content, words) in cases.items():
        file_id = await uploaded(client, alice, content, filename)
        final = await until_terminal(client, alice, file_id)
        assert final["component_statuses"]["variant_status"] == "failed", filename
        assert words in final["error_message"].lower(), final["error_message"]
        assert final["retry_count"] == 0  # not worth retrying


async def test_trigger_variants_requeues_and_reports_duplicates(client, alice, engine):
    file_id = await uploaded(client, alice, sample_files.image("PNG", (300, 200)), "p.png")
    await until_terminal(client, alice, file_id)
    first = (await client.post(f"/api/v2/files/{file_id}/trigger-variants", headers=alice.headers)).json()
    second = (await client.post(f"/api/v2/files/{file_id}/trigger-variants", headers=alice.headers)).json()
    assert first["success"] and first["current_status"] == "queued" and first["image_id"] == file_id
    if "skipped_duplicate" in second:  # the engine may already have finished the first one
        assert second["skipped_duplicate"] is True and second["task_id"] == first["task_id"]
    final = await until_terminal(client, alice, file_id)
    assert final["component_statuses"]["variant_status"] == "completed"
    assert len(final["processing_ids"]) >= 2


async def wait_for_job(job_id: uuid.UUID, file_id: uuid.UUID, seconds: float = 60) -> JobRow:
    from store import jobs

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = next(row for row in await jobs.jobs_of_file(file_id) if row.id == job_id)
        if row.status in ("completed", "failed", "cancelled"):
            return row
        await asyncio.sleep(0.2)
    raise AssertionError(f"job still {row.status} after {seconds} s")


async def run_until_done(engine: Engine, job_ids: list[uuid.UUID], files: list[uuid.UUID]) -> list[JobRow]:
    """Run an engine of the test's own until each job (of the file beside it) has ended; their rows."""
    stop = asyncio.Event()
    running = asyncio.create_task(engine.run(stop))
    try:
        return [await wait_for_job(job_id, file_id, 30) for job_id, file_id in zip(job_ids, files, strict=True)]
    finally:
        stop.set()
        await running


async def test_a_step_that_fails_twice_then_succeeds_completes_with_two_retries(client, alice, engine):
    from store import jobs
    from store.tables import File

    file_id = await uploaded(client, alice, sample_files.TEXT, "notes.txt")
    job_id, _ = await jobs.enqueue(uuid.UUID(file_id), alice.tenant_id, "flaky", max_attempts=3)
    engine.wake()
    row = await wait_for_job(job_id, uuid.UUID(file_id))
    assert row.status == "completed", row
    assert row.attempts == 3 and len(row.task_ids) == 3
    assert (await status(client, alice, file_id))["retry_count"] == 2
    stored = await File.select(File.visible_text).where(File.id == uuid.UUID(file_id)).first()
    assert stored["visible_text"] == "succeeded on attempt 3"


async def test_a_killed_worker_s_job_is_completed_by_another_claim(client, blobs, alice, engine, services):
    """An engine process takes the job and is SIGKILLed mid-step; once its lease expires another
    engine claims the job again and completes it."""
    import ray

    from store import jobs

    file_id = uuid.UUID(await uploaded(client, alice, sample_files.TEXT, "stall.txt"))
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.support.engine_worker", ray.get_runtime_context().gcs_address, "2"],
        env={**os.environ, **environment(services)},
        stdout=subprocess.PIPE,
    )
    try:
        await asyncio.wait_for(printed(worker, b"ready"), 120)
        job_id, _ = await jobs.enqueue(file_id, alice.tenant_id, "stall", max_attempts=3)
        marker = f"files/{alice.tenant_id}/{file_id}/test-stall/"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not await blobs.keys(marker):  # the step is really running
            await asyncio.sleep(0.1)
        row = next(row for row in await jobs.jobs_of_file(file_id) if row.id == job_id)
        assert row.status == "running" and row.task_ids, row
        first_worker = row.worker_id
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    successor = Engine(engine.location, STALL_STEPS, EngineConfig(lease_seconds=10, poll_seconds=0.1))
    stop = asyncio.Event()
    running = asyncio.create_task(successor.run(stop))
    try:
        row = await wait_for_job(job_id, file_id)
    finally:
        stop.set()
        await running
    assert row.status == "completed", row
    assert row.worker_id == successor.worker_id != first_worker and row.attempts == 2 and len(row.task_ids) == 2


async def test_a_worker_killed_before_its_commit_leaves_no_vectors_and_the_retry_saves_them_once(
    alice, engine, settings
):
    """An engine process runs the real `embed_chunks` up to its save, which writes the vectors inside the
    transaction that completes the job and is SIGKILLed there: no vector is stored and the job is not completed.
    Once its lease expires another engine completes the job, with one vector per chunk and model in use."""
    import ray

    from models.registry import Task
    from pipelines.inference.in_use import models_to_fill
    from store import documents, jobs
    from store.tables import Chunk, File

    texts = [f"Boiler log {number}: the pressure valve was checked, the gauge read {number} bar." for number in "123"]
    file_id = await insert_file(alice.tenant_id, "held.txt", text_extraction_status="completed")
    await documents.replace(file_id, alice.tenant_id, [], [chunk_row(index, text) for index, text in enumerate(texts)])
    chunk_ids = {row.id for row in await documents.chunks_of(file_id)}
    models = await models_to_fill(settings, Task.EMBED_TEXT)
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.support.engine_worker", ray.get_runtime_context().gcs_address, "2"],
        env={**os.environ, **environment(settings)},
        stdout=subprocess.PIPE,
    )
    try:
        await asyncio.wait_for(printed(worker, b"ready"), 120)
        job_id, _ = await jobs.enqueue(file_id, alice.tenant_id, EMBED_CHUNKS_HELD, max_attempts=3)
        await asyncio.wait_for(printed(worker, b"saved"), 120)  # the vectors are written, not committed
        assert not await Chunk.raw("SELECT 1 FROM chunk_embedding WHERE file_id = {}", file_id)
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    row = next(row for row in await jobs.jobs_of_file(file_id) if row.id == job_id)
    assert row.status == "running" and row.attempts == 1, row
    assert not await Chunk.raw("SELECT 1 FROM chunk_embedding WHERE file_id = {}", file_id)
    assert {chunk.embedding_status for chunk in await documents.chunks_of(file_id)} == {"pending"}
    status = await File.select(File.embedding_status).where(File.id == file_id).first()
    assert status["embedding_status"] != "completed"

    successor = Engine(
        engine.location, embedding_chunks(settings, hold=False), EngineConfig(lease_seconds=10, poll_seconds=0.1)
    )
    stop = asyncio.Event()
    running = asyncio.create_task(successor.run(stop))
    try:
        row = await wait_for_job(job_id, file_id, 120)
    finally:
        stop.set()
        await running
    assert row.status == "completed" and row.attempts == 2 and row.worker_id == successor.worker_id, row
    stored = await Chunk.raw(
        "SELECT chunk_id, model_id, count(*) AS n FROM chunk_embedding WHERE file_id = {} GROUP BY chunk_id, model_id",
        file_id,
    )
    assert sorted((r["chunk_id"], r["model_id"], r["n"]) for r in stored) == sorted(
        (chunk_id, model, 1) for chunk_id in chunk_ids for model in models
    )
    assert {chunk.embedding_status for chunk in await documents.chunks_of(file_id)} == {"completed"}
    status = await File.select(File.embedding_status).where(File.id == file_id).first()
    assert status["embedding_status"] == "completed"


def chunk_row(index: int, text: str) -> dict:
    return {
        "chunk_index": index,
        "content": text,
        "chunk_type": "paragraph",
        "heading_hierarchy": [],
        "page_numbers": [],
        "token_count": len(text.split()),
    }


async def printed(worker: subprocess.Popen, line: bytes) -> None:
    """Until the process prints `line` (Ray may print its workers' lines to it too)."""
    while (read := await asyncio.to_thread(worker.stdout.readline)) and read.strip() != line:
        pass
    assert read, f"the process ended before it printed {line!r}"


async def test_a_job_claimed_while_leases_are_renewed_is_not_abandoned(alice, engine, monkeypatch):
    """A renewal answers for the jobs it was sent: one claimed meanwhile has not lost its lease (abandoning it
    would leave it running nowhere until its lease expired)."""
    from store import jobs

    renew = jobs.extend_leases

    async def slow_renewal(*args: object, **options: object) -> set[uuid.UUID]:
        held = await renew(*args, **options)
        await asyncio.sleep(0.4)  # the engine claims more meanwhile
        return held

    async def brief(file: FileRef) -> dict[str, object]:
        await asyncio.sleep(0.15)
        return {}

    monkeypatch.setattr(jobs, "extend_leases", slow_renewal)
    files = [await insert_file(alice.tenant_id, f"brief-{i}.txt") for i in range(12)]
    job_ids = [(await jobs.enqueue(file_id, alice.tenant_id, "brief"))[0] for file_id in files]
    steps = {"brief": Step("brief", "crawl_status", InProcess(brief))}
    renewing = Engine(engine.location, steps, EngineConfig(max_in_flight=2, lease_seconds=0.9, poll_seconds=0.05))
    rows = await run_until_done(renewing, job_ids, files)
    assert [(row.status, row.attempts) for row in rows] == [("completed", 1)] * len(files)


async def test_each_lane_has_slots_of_its_own(alice, engine):
    """A backfill holds no slot of the interactive lane. While an upload's jobs run, the backfill claims nothing for
    its pause, then one job at a time beside them, and all its slots again once they are done."""
    from pipelines.engine.step import JOB_LANE
    from store import jobs

    running = {"interactive": 0, "batch": 0}
    seen: list[tuple[int, int]] = []
    started: dict[str, float] = {}

    async def hold(file: FileRef) -> dict[str, object]:
        lane = JOB_LANE.get()
        running[lane] += 1
        seen.append((running["interactive"], running["batch"]))
        started.setdefault(lane, time.monotonic())
        await asyncio.sleep(0.3)
        running[lane] -= 1
        return {}

    files = [await insert_file(alice.tenant_id, f"held-{i}.txt") for i in range(8)]
    queued = [(await jobs.enqueue(file_id, alice.tenant_id, "hold", lane="backfill"))[0] for file_id in files[:6]]
    queued += [(await jobs.enqueue(file_id, alice.tenant_id, "hold"))[0] for file_id in files[6:]]
    steps = {"hold": Step("hold", "crawl_status", InProcess(hold))}
    config = EngineConfig(
        max_in_flight=1, backfill_max_in_flight=3, backfill_pause_seconds=0.2, lease_seconds=10, poll_seconds=0.05
    )
    rows = await run_until_done(Engine(engine.location, steps, config), queued, files)
    assert [row.status for row in rows] == ["completed"] * len(files)
    assert all(batch <= 1 for interactive, batch in seen if interactive), seen
    assert started["batch"] - started["interactive"] >= 0.2, "the backfill did not pause"
    assert (1, 1) in seen, f"the lanes never ran side by side: {seen}"
    assert max(batch for _, batch in seen) == 3, f"the backfill never widened again: {seen}"


async def test_a_backfill_backlog_does_not_delay_a_fresh_upload(client, alice, engine):
    from store import jobs

    # Links: files with no upload steps of their own, so the interactive lane holds only the fresh photo.
    backlog_file = await _link(alice.tenant_id, "backlog")
    others = [await _link(alice.tenant_id, f"b{i}") for i in range(11)]
    for file_id in [backlog_file, *others]:
        await jobs.enqueue(file_id, alice.tenant_id, "sleepy", lane="backfill")
    engine.wake()
    await asyncio.sleep(0.5)  # the backlog is now running
    started = time.monotonic()
    photo = await uploaded(client, alice, sample_files.image("JPEG", (640, 480)), "fresh.jpg")
    # Its variants (OCR and embedding follow on model actors that may still be starting in this session).
    final = await status(client, alice, photo)
    while final["component_statuses"]["variant_status"] in ("queued", "processing") and time.monotonic() < started + 60:
        await asyncio.sleep(0.1)
        final = await status(client, alice, photo)
    elapsed = time.monotonic() - started
    assert final["component_statuses"]["variant_status"] == "completed"
    counts = (await jobs.lane_counts())["backfill"]
    assert counts.get("queued", 0) + counts.get("running", 0) > 0, "the backlog was still draining"
    assert elapsed < 5, f"the upload waited {elapsed:.1f} s behind the backlog"


async def test_processing_status_and_stuck_uploads(client, alice, bob, engine):
    from datetime import UTC, datetime, timedelta

    from store.tables import File

    photo = await uploaded(client, alice, sample_files.image("PNG", (120, 90)), "done.png")
    await until_terminal(client, alice, photo)
    status_body = (await client.get(f"/api/v2/files/{photo}/processing-status", headers=alice.headers)).json()
    assert status_body["primary_status"] == "completed"
    assert status_body["component_statuses"] == {
        "variant_status": "completed",
        "ocr_status": "completed",
        "embedding_status": "completed",
        "description_status": "skipped",
    }
    assert status_body["processing_started_at"] and status_body["completed_at"]

    # A link waits for a pipeline that does not exist yet: no progress, so it is stuck.
    waiting = str(await _link(alice.tenant_id, "waiting", crawl_status="pending"))
    theirs = str(await _link(bob.tenant_id, "theirs", crawl_status="pending"))
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    await File.update({File.updated_at: long_ago}).where(File.id.is_in([uuid.UUID(waiting), uuid.UUID(theirs)]))
    stuck = (
        await client.get("/api/v2/files/sessions/stuck", headers=alice.headers, params={"stuck_minutes": 1})
    ).json()
    ids = [item["file_id"] for item in stuck["images"]]
    assert waiting in ids and photo not in ids and theirs not in ids
    assert stuck["stuck_count"] == len(ids)
    entry = next(item for item in stuck["images"] if item["file_id"] == waiting)
    assert entry["is_stuck"] is True and entry["is_terminal"] is False and entry["unified_status"] == "queued"
    fresh = (
        await client.get("/api/v2/files/sessions/stuck", headers=alice.headers, params={"stuck_minutes": 30})
    ).json()
    assert waiting not in [item["file_id"] for item in fresh["images"]]
    invalid = await client.get("/api/v2/files/sessions/stuck", headers=alice.headers, params={"stuck_minutes": 0})
    assert invalid.status_code == 422


async def test_a_stopping_engine_gives_its_running_jobs_back(client, blobs, alice, engine):
    """What SIGTERM does to `scopix worker`: the step is cancelled and the job is queued again at
    once, with the attempt not counted."""
    from store import jobs

    file_id = await _link(alice.tenant_id, "stopping")  # no steps of its own
    stopping = Engine(engine.location, STALL_STEPS, EngineConfig(lease_seconds=30, poll_seconds=0.1))
    stop = asyncio.Event()
    running = asyncio.create_task(stopping.run(stop))
    job_id, _ = await jobs.enqueue(file_id, alice.tenant_id, "stall")
    marker = f"files/{alice.tenant_id}/{file_id}/test-stall/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not await blobs.keys(marker):
        await asyncio.sleep(0.1)
    stop.set()
    await running
    row = next(row for row in await jobs.jobs_of_file(file_id) if row.id == job_id)
    assert row.status == "queued" and row.attempts == 0 and row.lease_expires_at is None, row
    assert await jobs.cancel_for_file(file_id) == 1  # tidy: no engine of the session runs "stall"


async def _link(tenant_id: uuid.UUID, name: str, **columns) -> uuid.UUID:
    """A link's row: a file with no steps of its own (its crawler is not built yet)."""
    return await insert_file(tenant_id, f"{name}.url", media_type="link", content_type="text/uri-list", **columns)
