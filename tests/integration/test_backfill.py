"""Backfills over stored images on the session's engine (real Postgres, S3, Ray and the perceptual embedder): the
selection, resuming after the driver stopped, cancelling, the command's listing and progress lines, an upload
that is processed at once while a backfill's jobs wait, and a model swap as a backfill."""

from __future__ import annotations

import asyncio
import io
import uuid

import pytest

from api.cli import backfill as command
from api.cli.main import _parser
from models.registry import PERCEPTUAL, Task
from pipelines import backfill
from pipelines.inference import swap
from pipelines.inference.in_use import STATE_TTL_SECONDS
from store import backfills, image_embeddings, jobs, model_state
from store.errors import InvalidInput
from store.tables import File, Job
from testkit import tiny_models
from tests.support.api_calls import until_terminal, uploaded
from tests.support.callers import new_caller
from tests.support.sample_files import image
from tests.support.stored_images import stored_images

pytestmark = pytest.mark.integration


async def backfill_jobs(backfill_id: uuid.UUID) -> list[dict]:
    return await Job.select(Job.file_id, Job.status, Job.lane).where(Job.backfill_id == backfill_id)


async def finished(backfill_id: uuid.UUID, size: int = 10) -> backfills.Backfill:
    found = await backfills.get(backfill_id)
    assert found is not None
    return await asyncio.wait_for(
        backfill.drive(found, lambda row: backfill.next_batch(row, size), lambda progress: None, ahead=size), 120
    )


async def test_a_backfill_resumes_where_its_driver_stopped_and_runs_each_file_once(settings, engine) -> None:
    alice, bob = await new_caller(), await new_caller()
    failed = await stored_images(settings, alice.tenant_id, 25, embedding_status="failed")
    done = await stored_images(settings, alice.tenant_id, 3, embedding_status="completed")
    others = await stored_images(settings, bob.tenant_id, 4, embedding_status="failed")
    request = backfill.Request("embed_image", tenant=alice.name, only="failed")
    started = await backfill.start(settings, request)
    assert started.counts == {"expected": 25}

    first = await backfill.next_batch(started, 10)  # the driver stops after its first checkpoint
    assert first.counts["queued"] == 10 and first.cursor is not None and first.enqueued_at is None
    ended = await finished((await backfill.resume(started.id)).id)

    queued = await backfill_jobs(started.id)
    assert ended.status == "completed" and ended.counts["queued"] == 25
    assert sorted(job["file_id"] for job in queued) == sorted(failed)  # each once; none of bob's nor the completed
    assert {job["status"] for job in queued} == {"completed"} and {job["lane"] for job in queued} == {"backfill"}
    rows = await File.select(File.id, File.embedding_status).where(File.id.is_in(failed + done + others))
    statuses = {row["id"]: row["embedding_status"] for row in rows}
    assert {statuses[file_id] for file_id in failed + done} == {"completed"}
    assert {statuses[file_id] for file_id in others} == {"failed"}
    for file_id in failed:
        assert await image_embeddings.vector_of(file_id, PERCEPTUAL) is not None
    with pytest.raises(InvalidInput, match="completed"):
        await backfill.resume(started.id)


async def test_a_file_whose_step_is_under_way_is_counted_not_queued_twice(settings, database) -> None:
    caller = await new_caller()
    [busy, idle] = await stored_images(settings, caller.tenant_id, 2)
    await jobs.enqueue(busy, caller.tenant_id, "embed_image")  # an upload's job, not yet claimed
    started = await backfill.start(settings, backfill.Request("embed_image", tenant=str(caller.tenant_id), only="all"))

    queued = await backfill.next_batch(started, 10)

    assert queued.counts == {"expected": 2, "selected": 2, "queued": 1, "under_way": 1}
    assert [job["file_id"] for job in await backfill_jobs(started.id)] == [idle]
    assert queued.enqueued_at is not None
    await backfills.cancel(started.id)


async def test_cancel_stops_a_backfill_and_its_queued_jobs_and_list_shows_it(settings, database) -> None:
    caller = await new_caller()
    await stored_images(settings, caller.tenant_id, 12)
    started = await backfill.start(settings, backfill.Request("embed_image", tenant=caller.name))
    await backfill.next_batch(started, 5)
    out = io.StringIO()

    await command.run(_parser().parse_args(["backfill", "cancel", str(started.id)]), settings, out)
    ended = await finished(started.id)  # a driver of a cancelled backfill returns at once
    await command.run(_parser().parse_args(["backfill", "list"]), settings, out)

    assert out.getvalue().startswith(f"cancelled {started.id}: ")
    assert ended.status == "cancelled" and ended.counts["queued"] == 5 and ended.enqueued_at is None
    assert "queued" not in {job["status"] for job in await backfill_jobs(started.id)}
    listed = next(line for line in out.getvalue().splitlines() if line.startswith(str(started.id)))
    assert listed.split("\t")[1:5] == ["backfill", "embed_image", "cancelled", "5"]
    with pytest.raises(Exception, match="no running backfill"):
        await command.run(_parser().parse_args(["backfill", "cancel", str(started.id)]), settings, out)


async def test_the_command_checks_its_request_and_a_dry_run_queues_nothing(settings, database) -> None:
    caller = await new_caller()
    await stored_images(settings, caller.tenant_id, 3, embedding_status="failed")
    out = io.StringIO()
    before = len(await backfills.recent(1000))

    await command.run(
        _parser().parse_args(["backfill", "embed_image", "--tenant", caller.name, "--dry-run"]), settings, out
    )

    assert out.getvalue() == "embed_image: 3 files would be queued (dry run; nothing queued)\n"
    assert len(await backfills.recent(1000)) == before
    for argv, field in (
        (["backfill", "no_such_step"], "step"),
        (["backfill", "embed_image", "--media-type", "document"], "media_type"),
        (["backfill", "variants", "--model", "anything"], "model"),
        (["backfill", "embed_image", "--model", "no-such-model"], "model"),
        (["backfill", "embed_image", "--since", "2026-02-01", "--until", "2026-01-01"], "until"),
    ):
        with pytest.raises(InvalidInput) as refused:
            await command.run(_parser().parse_args(argv), settings, out)
        assert refused.value.detail.startswith(f"{field}: ")
    with pytest.raises(Exception, match="no tenant"):
        await command.run(_parser().parse_args(["backfill", "embed_image", "--tenant", "nobody-at-all"]), settings, out)


async def test_without_a_terminal_the_command_logs_a_line_per_n_files(settings, engine) -> None:
    caller = await new_caller()
    await stored_images(settings, caller.tenant_id, 6)
    out = io.StringIO()
    argv = ["backfill", "embed_image", "--tenant", caller.name, "--batch-size", "4", "--log-every", "3"]

    await asyncio.wait_for(command.run(_parser().parse_args(argv), settings, out), 120)

    lines = out.getvalue().splitlines()
    assert lines[0].endswith("embed_image over 6 files")
    progress = [line for line in lines[1:-1] if "jobs/s" in line]
    assert progress and progress[-1].split(": ")[1].startswith("6/6 jobs")
    assert lines[-1].endswith("completed: 6 completed, 0 failed, 0 cancelled; 0 were under way already")


async def test_an_upload_is_processed_at_once_while_a_backfill_waits(settings, engine, client, alice) -> None:
    many = await new_caller()
    await stored_images(settings, many.tenant_id, 100)
    started = await backfill.start(settings, backfill.Request("embed_image", tenant=many.name, only="all"))
    driving = asyncio.create_task(
        backfill.drive(started, lambda row: backfill.next_batch(row, 500), lambda progress: None, ahead=500)
    )
    try:
        while not (await backfills.job_counts(started.id)).get("completed"):
            await asyncio.sleep(0.05)
        file_id = await uploaded(client, alice, image(color=(1, 2, 3)), "new.jpg")
        final = await until_terminal(client, alice, file_id, seconds=120)
    finally:
        await backfills.cancel(started.id)
        await asyncio.wait_for(driving, 30)

    assert final["unified_status"] == "completed"
    [first] = [job for job in await jobs.jobs_of_file(uuid.UUID(file_id)) if job.step == "variants"]
    assert first.started_at is not None
    ours = Job.backfill_id == started.id
    # Queued before the upload, the backfill's jobs were still waiting when the upload's processing started...
    waiting = await Job.count().where(ours & (Job.started_at.is_null() | (Job.started_at > first.started_at)))
    assert waiting >= 50
    # ...and at most a claim round under way when the upload's job was queued went ahead of it.
    overtaking = await Job.count().where(
        ours & (Job.started_at > first.created_at) & (Job.started_at < first.started_at)
    )
    assert overtaking <= 2


async def test_a_model_swap_is_a_backfill_that_list_shows_and_cancel_gives_up(settings, engine, tmp_path) -> None:
    caller = await new_caller()
    await stored_images(settings, caller.tenant_id, 3)
    await finished((await backfill.start(settings, backfill.Request("embed_image", tenant=caller.name))).id)
    clip = str(tiny_models.clip(tmp_path / "clip"))
    try:
        activation = await swap.activate(settings, Task.EMBED_IMAGE, clip)
        [row] = [row for row in await backfills.recent(5) if row.kind == "swap" and row.status == "running"]
        with pytest.raises(InvalidInput, match="carried on by the engines"):
            await backfill.resume(row.id)
        out = io.StringIO()
        await command.run(_parser().parse_args(["backfill", "cancel", str(row.id)]), settings, out)
        state = await model_state.get(Task.EMBED_IMAGE.value)
        ended = await backfills.get(row.id)
        queued = await backfill_jobs(row.id)
    finally:
        await Job.raw("DELETE FROM model_state WHERE task = {}", Task.EMBED_IMAGE.value)
        await asyncio.sleep(STATE_TTL_SECONDS + 0.1)

    assert activation.outcome == "started" and activation.queued >= 3
    assert row.step == "embed_image" and row.selection["model"] == activation.model_id
    assert row.counts == {"queued": activation.queued} and row.enqueued_at is not None
    assert len(queued) == activation.queued and "queued" not in {job["status"] for job in queued}
    assert out.getvalue().startswith(f"cancelled {row.id}: ")
    assert state is not None and state.target_model_id is None and state.active_model_id == PERCEPTUAL
    assert ended is not None and ended.status == "cancelled"
