"""Videos through the real engine: probe, key frames, thumbnails and frames through the OCR and image-embedding
actors, with real clips made by FFmpeg (tests/support/sample_videos.py); bad videos fail once with the reason and
leave nothing in S3."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from PIL import Image

from models.registry import PERCEPTUAL, PP_OCR, Task, resolve
from store import image_embeddings, jobs, video_frames
from store.tables import File
from testkit.photos import encode
from tests.support import sample_videos
from tests.support.api_calls import file_route, until_terminal, upload, uploaded
from tests.support.callers import Caller, new_caller
from tests.support.lone_engine import wait_for
from tests.support.quotas import standing

pytestmark = pytest.mark.integration


async def analysed(client: httpx.AsyncClient, caller: Caller, content: bytes, filename: str) -> dict:
    file_id = await uploaded(client, caller, content, filename)
    await until_terminal(client, caller, file_id, seconds=120)
    response = await client.get(f"/api/v2/files/{file_id}", headers=caller.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def image_at(client: httpx.AsyncClient, url: str) -> Image.Image:
    response = await client.get(url)
    assert response.status_code == 200
    from io import BytesIO

    return Image.open(BytesIO(response.content))


async def test_a_rotated_h264_mp4_is_probed_as_displayed_with_thumbnails(client, alice, engine) -> None:
    response = await upload(client, alice, sample_videos.rotated_mp4(), "turned.mp4")
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["status"] == "processing" and answer["analysis_started"] is True
    assert answer["thumbnail_generation_started"] is True
    file_id = answer["file_id"]
    final = await until_terminal(client, alice, file_id, seconds=120)
    body = (await client.get(f"/api/v2/files/{file_id}", headers=alice.headers)).json()

    assert final["unified_status"] == "completed" and body["primary_status"] == "completed"
    assert body["video_analysis_status"] == body["analysis_status"] == "completed"
    assert (body["duration_seconds"], body["frame_rate"], body["video_codec"]) == (2.0, 25.0, "h264")
    assert body["resolution"] == "240x320"  # stored 320×240, shown turned a quarter
    assert body["content_created_at"].startswith("2024-05-06T07:08:09")
    details = body["video_details"]
    assert details["rotation"] == 90 and details["audio_codec"] == "aac" and details["pixel_format"] == "yuv420p"
    assert details["container"].startswith("mov,mp4") and details["bit_rate"] > 0
    # Thumbnails from a frame, upright, never upscaled; the original is the video itself.
    assert body["blur_hash"] and body["thumbnail_url"] and body["medium_url"] and body["full_url"]
    large = await image_at(client, body["full_url"])
    assert large.size == (240, 320)
    assert (await image_at(client, body["thumbnail_url"])).size == (192, 256)
    sizes = {}
    for variant in ("tiny_64", "small_256", "medium_750", "large_1024"):
        redirect = await client.get(f"/api/v2/files/{file_id}/variant/{variant}", headers=alice.headers)
        assert redirect.status_code == 302, redirect.text
        sizes[variant] = (await image_at(client, redirect.headers["location"])).size
    assert sizes == {"tiny_64": (48, 64), "small_256": (192, 256), "medium_750": (240, 320), "large_1024": (240, 320)}
    original = await client.get(f"/api/v2/files/{file_id}/variant/original", headers=alice.headers)
    assert original.status_code == 302
    assert (await client.get(original.headers["location"])).content == sample_videos.rotated_mp4()
    assert body["ai_models"]["ocr"]["model_id"] == PP_OCR
    assert body["ai_models"]["image_embedding"]["model_id"] == PERCEPTUAL
    # No describe model is configured: skipped, with the reason.
    assert body["description_status"] == "skipped" and body["description_error"]


async def test_a_vp9_webm_is_probed(client, alice, engine) -> None:
    body = await analysed(client, alice, sample_videos.vp9_webm(), "clip.webm")
    assert body["video_analysis_status"] == "completed"
    assert (body["video_codec"], body["resolution"], body["frame_rate"]) == ("vp9", "320x240", 25.0)
    assert body["duration_seconds"] == pytest.approx(2.0, abs=0.05)
    assert body["video_details"]["audio_codec"] is None and body["content_created_at"] is None


async def test_three_hard_cuts_are_found_and_frames_stay_within_the_cap(client, alice, engine, blobs) -> None:
    body = await analysed(client, alice, sample_videos.three_cuts(), "cuts.mp4")
    frames = await video_frames.frames_of(uuid.UUID(body["id"]))
    cuts = [frame.timestamp_seconds for frame in frames if frame.scene_cut]
    # Each scene lasts 38 frames at 25 fps (1.52 s): the cuts are at its multiples.
    assert cuts == pytest.approx([1.52, 3.04, 4.56], abs=0.05)
    assert 4 <= len(frames) <= 32 and frames[0].timestamp_seconds == 0.0
    times = [frame.timestamp_seconds for frame in frames]
    assert times == sorted(times) and times[-1] > 5.0  # spread to the end
    assert [frame.frame_index for frame in frames] == list(range(len(frames)))
    assert {frame.object_key for frame in frames} <= set(await blobs.keys(f"files/{alice.tenant_id}/{body['id']}/"))


async def test_a_single_shot_is_covered_and_its_thumbnail_is_not_the_black_opening(client, alice, engine) -> None:
    body = await analysed(client, alice, sample_videos.single_shot(), "shot.mp4")
    frames = await video_frames.frames_of(uuid.UUID(body["id"]))
    times = [frame.timestamp_seconds for frame in frames]
    assert times[0] == 0.0 and times[-1] > 7.0 and len(frames) <= 32
    assert [frame.scene_cut for frame in frames].count(True) <= 1  # at most the end of the black opening
    thumbnail = (await image_at(client, body["thumbnail_url"])).convert("L")
    low, high = thumbnail.getextrema()
    assert high - low > 100, "the thumbnail shows the black opening"


async def test_text_in_a_frame_is_read_with_its_times_and_listed_per_frame(client, alice, engine) -> None:
    body = await analysed(client, alice, sample_videos.with_text(), "dock.mp4")
    assert body["visible_text"] == sample_videos.TEXT
    [seen] = body["text_regions"]
    assert seen["text"] == sample_videos.TEXT and seen["timestamps"][0] == 0.0 and seen["confidence"] > 0.5
    shown = await file_route(client, alice, body["id"], "frames")
    assert shown["file_id"] == body["id"] and shown["total_count"] == len(shown["frames"]) >= 2
    first = shown["frames"][0]
    assert first["timestamp_seconds"] == 0.0 and first["visible_text"] == sample_videos.TEXT
    assert (await image_at(client, first["url"])).size == (640, 360)


async def test_the_frames_route_is_for_videos_only(client, alice, engine) -> None:
    from tests.support import sample_files

    photo = await uploaded(client, alice, sample_files.image(), "photo.jpg")
    response = await client.get(f"/api/v2/files/{photo}/frames", headers=alice.headers)
    assert response.status_code == 400 and response.json()["code"] == "wrong_media_type"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (sample_videos.truncated, "truncated"),
        (sample_videos.audio_only, "no video stream"),
        (sample_videos.broken_moov, "no video stream"),
        (sample_videos.unknown_codec, "codec is not supported"),
        (sample_videos.huge_picture, "(16000×16000) has more than"),
    ],
)
async def test_a_bad_video_fails_once_with_the_reason_and_leaves_nothing(
    client, alice, engine, blobs, make, reason
) -> None:
    content = make()
    file_id = await uploaded(client, alice, content, "bad.mp4")
    final = await until_terminal(client, alice, file_id, seconds=120)
    body = (await client.get(f"/api/v2/files/{file_id}", headers=alice.headers)).json()
    assert final["unified_status"] == "failed" and body["video_analysis_status"] == "failed"
    assert body["description_status"] == "skipped"
    assert reason in final["error_message"].lower()
    [job] = await jobs.jobs_of_file(uuid.UUID(file_id))
    assert job.status == "failed" and job.attempts == 1  # no retries: the same bytes fail again
    assert await blobs.keys(f"files/{alice.tenant_id}/{file_id}/") == [f"files/{alice.tenant_id}/{file_id}/original"]


async def test_an_analysed_video_keeps_its_reserved_credits_and_a_failed_one_gets_them_back(client, engine) -> None:
    caller = await new_caller("free")
    good = await analysed(client, caller, sample_videos.vp9_webm(), "good.webm")
    assert good["video_analysis_status"] == "completed"
    assert await standing(caller) == (3, 0)  # the file's credit and the analysis's two
    bad = await analysed(client, caller, sample_videos.truncated(), "bad.mp4")
    assert bad["video_analysis_status"] == "failed"
    assert await standing(caller) == (4, 0)  # the failed analysis's two came back


async def test_a_session_holding_a_video_completes(client, alice, engine) -> None:
    files = [("files", ("clip.webm", sample_videos.vp9_webm(), "video/webm"))]
    response = await client.post("/api/v2/files/upload/batch", headers=alice.headers, files=files)
    assert response.status_code == 201, response.text
    session_id = response.json()["session_id"]
    deadline = time.monotonic() + 120
    while (shown := await file_route(client, alice, f"sessions/{session_id}", "status"))["status"] == "processing":
        assert time.monotonic() < deadline, shown
        await asyncio.sleep(0.2)
    assert shown["status"] == "completed", shown


async def test_an_image_finds_the_video_whose_frame_it_shows_and_back(client, alice, engine) -> None:
    video = await analysed(client, alice, sample_videos.single_shot(), "walk.mp4")
    frame = (await client.get(video["full_url"])).content  # the thumbnail's frame, as a photo of it
    photo = await uploaded(client, alice, frame, "still.jpg")
    await until_terminal(client, alice, photo, seconds=120)

    found = await file_route(client, alice, photo, "similar")
    assert found["items"][0]["image_id"] == video["id"] and found["items"][0]["media_type"] == "video"
    assert found["items"][0]["vector_similarity"] > 0.95
    back = await file_route(client, alice, video["id"], "similar")
    assert back["reference_image_id"] == video["id"] and back["items"][0]["image_id"] == photo


def test_a_configured_describe_model_follows_the_analysis_and_none_does_not(services) -> None:
    from pipelines.catalog import steps_for

    def after_analysis(describe_model: str | None) -> tuple[str, ...]:
        return steps_for(services.replace(models__describe__model=describe_model))["video_analysis"].follow_ups({})

    assert after_analysis(None) == ()
    assert after_analysis("/models/blip") == ("describe",)


async def test_a_video_is_described_by_its_frames(client, alice, engine, services, tmp_path) -> None:
    """A tiny random BLIP, configured like any local model, on an engine of its own (the session's engine has no
    describe model). Some 30 s: most of it is the describe actor starting (torch in a fresh Ray worker)."""
    from dataclasses import replace

    from pipelines.engine.runner import Engine, EngineConfig
    from pipelines.image.plan import describe_step
    from pipelines.inference import configured
    from testkit import tiny_models

    model = str(tiny_models.blip(tmp_path / "blip"))
    describers = configured.describers(services.replace(models__describe__model=model, models__actors__num_cpus=0.0))
    step = replace(describe_step(engine.location, describers), name="describe_with_blip")
    video = await analysed(client, alice, sample_videos.three_cuts(), "cuts.mp4")
    file_id = uuid.UUID(video["id"])
    job_id, _ = await jobs.enqueue(file_id, alice.tenant_id, step.name)
    lone = Engine(
        engine.location, {step.name: step}, EngineConfig(max_in_flight=1, lease_seconds=10, poll_seconds=0.05)
    )
    stop = asyncio.Event()
    running = asyncio.create_task(lone.run(stop))
    try:
        job = await wait_for(job_id, file_id, lambda row: row["status"] in ("completed", "failed"), seconds=180)
    finally:
        stop.set()
        await running
        await describers.close(kill=True)
    body = (await client.get(f"/api/v2/files/{file_id}", headers=alice.headers)).json()
    frames = (await file_route(client, alice, str(file_id), "frames"))["frames"]

    assert job["status"] == "completed" and job["attempts"] == 1
    assert body["description_status"] == "completed" and body["description_error"] is None
    described = [frame for frame in frames if frame["description"]]
    assert len(described) == min(len(frames), 8) and described[0]["timestamp_seconds"] == 0.0
    lines = body["upload_description"].splitlines()
    assert lines[0] == f"0:00 {described[0]['description']}"
    assert all(line[:5] in {"0:00 ", "0:01 ", "0:02 ", "0:03 ", "0:04 ", "0:05 ", "0:06 "} for line in lines)
    assert body["ai_models"]["description"]["model_id"] == resolve(Task.DESCRIBE, model).model_id


async def frame_vectors(file_id: uuid.UUID, model_id: str) -> dict[int, np.ndarray]:
    rows = await File.raw(
        "SELECT frame_index, embedding FROM video_frame_embedding WHERE file_id = {} AND model_id = {}",
        file_id,
        model_id,
    )
    return {row["frame_index"]: np.asarray(row["embedding"].to_list(), np.float32) for row in rows}


async def test_an_image_finds_the_video_by_a_later_frame_with_its_time(client, engine) -> None:
    """The photo is the clip's second scene, not its thumbnail's frame: found by that frame's vector."""
    owner = await new_caller()
    video = await analysed(client, owner, sample_videos.cut_to_photo(), "cut.mp4")
    file_id = uuid.UUID(video["id"])
    frames = await video_frames.frames_of(file_id)
    vectors = await frame_vectors(file_id, PERCEPTUAL)
    assert len(frames) >= 2 and sorted(vectors) == [frame.frame_index for frame in frames]
    photo = await uploaded(client, owner, encode(sample_videos.PHOTO), "photo.jpg")
    await until_terminal(client, owner, photo, seconds=120)

    [found] = (await file_route(client, owner, photo, "similar"))["items"]
    assert found["image_id"] == video["id"] and found["media_type"] == "video"
    cut = sample_videos.SCENE_SECONDS
    assert cut - 0.05 <= found["matched_frame_seconds"] <= 2 * cut
    by_photo = await image_embeddings.vector_of(uuid.UUID(photo), PERCEPTUAL)
    by_thumbnail = await image_embeddings.vector_of(file_id, PERCEPTUAL)
    assert by_photo is not None and by_thumbnail is not None
    assert found["vector_similarity"] > 0.9 > float(by_photo @ by_thumbnail)
    [matched] = [frame for frame in frames if frame.timestamp_seconds == found["matched_frame_seconds"]]
    assert found["vector_similarity"] == pytest.approx(float(by_photo @ vectors[matched.frame_index]), abs=1e-5)


async def test_a_deleted_video_is_found_by_no_frame_and_a_purge_drops_its_frame_vectors(client, engine, blobs) -> None:
    from pipelines.purge import purge_expired

    owner = await new_caller()
    video = await analysed(client, owner, sample_videos.cut_to_photo(), "cut.mp4")
    photo = await uploaded(client, owner, encode(sample_videos.PHOTO), "photo.jpg")
    await until_terminal(client, owner, photo, seconds=120)
    assert (await client.delete(f"/api/v2/files/{video['id']}", headers=owner.headers)).status_code == 200

    assert (await file_route(client, owner, photo, "similar"))["items"] == []
    file_id = uuid.UUID(video["id"])
    await File.update({File.deleted_at: datetime.now(UTC) - timedelta(days=31)}).where(File.id == file_id)
    assert await purge_expired(blobs, retention_days=30) >= 1
    assert await frame_vectors(file_id, PERCEPTUAL) == {}


async def test_a_purged_video_whose_analysis_never_ran_gets_its_credits_back(blobs) -> None:
    from pipelines.purge import purge_expired
    from store import quotas
    from tests.support.file_rows import insert_file

    caller = await new_caller("free")
    file_id = await insert_file(caller.tenant_id, "never.mp4", media_type="video", content_type="video/mp4")
    await quotas.charge(caller.tenant_id, 1, [file_id])  # as an upload does; its analysis is cancelled by a delete
    assert await standing(caller) == (3, 0)
    await File.update({File.deleted_at: datetime.now(UTC) - timedelta(days=31)}).where(File.id == file_id)
    assert await purge_expired(blobs, retention_days=30) >= 1
    assert await standing(caller) == (1, 0)  # the file's credit stays spent, the analysis's two come back


async def test_the_embedding_step_that_a_swap_queues_gives_a_video_the_same_vectors(client, alice, engine) -> None:
    """A swap of the image embedder backfills with the `embed_image` step (pipelines/inference/swap.py): on a video it
    reads the thumbnail's variant and the stored key frames, the very bytes the analysis embedded."""
    video = await analysed(client, alice, sample_videos.vp9_webm(), "swap.webm")
    file_id = uuid.UUID(video["id"])
    analysed_vector = await image_embeddings.vector_of(file_id, PERCEPTUAL)
    analysed_frames = await frame_vectors(file_id, PERCEPTUAL)
    assert len(analysed_frames) == len(await video_frames.frames_of(file_id)) >= 1
    await File.raw("DELETE FROM image_embedding WHERE file_id = {}", file_id)
    await File.raw("DELETE FROM video_frame_embedding WHERE file_id = {}", file_id)
    job_id, _ = await jobs.enqueue(file_id, alice.tenant_id, "embed_image", lane="backfill")
    engine.wake()
    job = await wait_for(job_id, file_id, lambda row: row["status"] in ("completed", "failed"), seconds=60)

    assert job["status"] == "completed"
    again = await image_embeddings.vector_of(file_id, PERCEPTUAL)
    assert analysed_vector is not None and again is not None and np.allclose(again, analysed_vector, atol=1e-6)
    frames_again = await frame_vectors(file_id, PERCEPTUAL)
    assert sorted(frames_again) == sorted(analysed_frames)
    assert all(np.allclose(frames_again[index], vector, atol=1e-6) for index, vector in analysed_frames.items())
