"""Swapping the image models without downtime, through the real `scopix models` command and engine steps:
the image embedder (the perceptual default -> a tiny random CLIP, for images and a video's key frames) while
`/similar` is called in a loop, and the describer (a tiny BLIP -> a tiny LLaVA-style model), whose old descriptions
stay beside the new ones until the flip makes the new ones shown, and go when pruned.

A `/similar` answer is told apart by its scores: each `vector_similarity` must equal the cosine of the two
images' vectors in exactly one model's space. The session engine also claims the backfill jobs (it runs the same
steps); only the engines built here run the swap's upkeep, so only they flip.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from models.registry import PERCEPTUAL, Task, resolve
from pipelines.inference.in_use import STATE_TTL_SECONDS
from store import frame_embeddings, image_embeddings, jobs, model_state, video_frames
from store.tables import Job
from testkit import tiny_models
from testkit.photos import encode, near_copy, photo
from tests.support import sample_videos
from tests.support.api_calls import settled, uploaded
from tests.support.callers import Caller, new_caller
from tests.support.model_swaps import Running, scopix, until_flipped

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("vision-swap")
    made = {"clip": tiny_models.clip(root / "clip"), "blip": tiny_models.blip(root / "blip")}
    made["llava"] = tiny_models.llava(root / "llava")
    return {name: str(Path(path).resolve()) for name, path in made.items()}


async def processed_photos(http: httpx.AsyncClient, caller: Caller, seeds: range) -> list[str]:
    """Photos uploaded and processed by the session engine, plus a near copy of the first."""
    pictures = [photo(seed) for seed in seeds]
    ids = [await uploaded(http, caller, encode(picture), f"swap-{n}.jpg") for n, picture in enumerate(pictures)]
    ids.append(await uploaded(http, caller, near_copy(pictures[0]), "swap-copy.jpg"))
    await settled(http, caller, ids)
    return ids


async def detail(http: httpx.AsyncClient, caller: Caller, file_id: str) -> dict:
    response = await http.get(f"/api/v2/files/{file_id}", headers=caller.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def forget(task: str) -> None:
    """Leave the task to the settings again, whatever a test did."""
    await Job.raw("DELETE FROM model_state WHERE task = {}", task)
    await asyncio.sleep(STATE_TTL_SECONDS + 0.1)


def space_of(body: dict, reference: str, spaces: dict[str, dict[str, np.ndarray]]) -> str:
    """The one model whose cosines every item's vector_similarity equals."""
    assert body["items"], body
    matching = [
        model
        for model, vectors in spaces.items()
        if all(
            item["image_id"] in vectors
            and abs(item["vector_similarity"] - float(vectors[reference] @ vectors[item["image_id"]])) < 1e-4
            for item in body["items"]
        )
    ]
    assert len(matching) == 1, (body, matching)
    return matching[0]


async def vectors_in(model: str, file_ids: list[str]) -> dict[str, np.ndarray]:
    found = {file_id: await image_embeddings.vector_of(uuid.UUID(file_id), model) for file_id in file_ids}
    return {file_id: vector for file_id, vector in found.items() if vector is not None}


async def test_similar_images_stay_on_the_active_image_model_until_the_flip(http, settings, model_dirs, engine) -> None:
    owner = await new_caller()
    ids = await processed_photos(http, owner, range(40, 44))
    # A video of another tenant: its key frames' vectors are backfilled with its thumbnail's, and pruned with them.
    viewer = await new_caller()
    video = uuid.UUID(await uploaded(http, viewer, sample_videos.three_cuts(), "cuts.mp4"))
    await settled(http, viewer, [str(video)])
    frames = len(await video_frames.frames_of(video))
    clip = resolve(Task.EMBED_IMAGE, model_dirs["clip"]).model_id
    answers: list[tuple[float, httpx.Response]] = []
    stop = asyncio.Event()

    async def similar_loop() -> None:
        while not stop.is_set():
            started = time.monotonic()
            answers.append((started, await http.get(f"/api/v2/files/{ids[0]}/similar", headers=owner.headers)))
            await asyncio.sleep(0.02)

    looping = asyncio.create_task(similar_loop())
    engine = None
    try:
        code, out, err = await scopix(settings, "models", "activate", "embed_image", clip)
        assert code == 0 and f"embed_image: backfilling {clip}:" in out, (out, err)
        activated = time.monotonic()
        await asyncio.sleep(1.0)  # no engine runs the upkeep yet: nothing flips, whatever the backfill has done
        assert (await model_state.get("embed_image")).target_model_id == clip
        engine = Running(settings)
        flipped = await until_flipped("embed_image", clip)
        await asyncio.sleep(2 * STATE_TTL_SECONDS + 0.5)
    finally:
        stop.set()
        await looping
        if engine is not None:
            await engine.stop()

    try:
        spaces = {PERCEPTUAL: await vectors_in(PERCEPTUAL, ids), clip: await vectors_in(clip, ids)}
        assert set(spaces[clip]) == set(ids) and {len(v) for v in spaces[clip].values()} == {24}
        assert await vectors_in(clip, [str(video)]) and await frame_embeddings.count(video, clip) == frames > 1
        assert all(response.status_code == 200 for _, response in answers), [r.text for _, r in answers]
        used = [(started, space_of(response.json(), ids[0], spaces)) for started, response in answers]
        during = [model for started, model in used if activated <= started < flipped]
        after = [model for started, model in used if started > flipped + STATE_TTL_SECONDS + 0.1]
        assert during and set(during) == {PERCEPTUAL}, used
        assert after and set(after) == {clip}, used
        provenance = (await detail(http, owner, ids[0]))["ai_models"]["image_embedding"]
        assert provenance["model_id"] == clip and provenance["revision"].startswith("sha256:"), provenance

        code, out, _ = await scopix(settings, "models", "prune", "embed_image")
        assert code == 0 and f"dropped {PERCEPTUAL}: " in out and clip not in out, out
        assert await vectors_in(PERCEPTUAL, ids) == {} and set(await vectors_in(clip, ids)) == set(ids)
        left = [await frame_embeddings.count(video, model) for model in (PERCEPTUAL, clip)]
        assert left == [0, frames], left
    finally:
        await forget("embed_image")


async def test_new_descriptions_are_kept_beside_the_old_until_the_flip_shows_them(
    http, settings, model_dirs, engine
) -> None:
    blip, llava = (resolve(Task.DESCRIBE, model_dirs[name]).model_id for name in ("blip", "llava"))
    owner = await new_caller()
    ids = await processed_photos(http, owner, range(50, 52))
    # BLIP is the active describer, as a swap before this one would have left it.
    await Job.raw("INSERT INTO model_state (task, active_model_id) VALUES ('describe', {})", blip)
    await asyncio.sleep(STATE_TTL_SECONDS + 0.1)
    try:
        for file_id in ids:
            await jobs.enqueue(uuid.UUID(file_id), owner.tenant_id, "describe")
        before = {file_id: await described(http, owner, file_id, 1) for file_id in ids}
        assert all(body["full_descriptions"][0]["model_id"] == blip for body in before.values())

        code, out, err = await scopix(settings, "models", "activate", "describe", llava)
        assert code == 0 and f"describe: backfilling {llava}: {len(ids)} files queued" in out, (out, err)
        # The session engine backfills; no upkeep runs, so BLIP's descriptions are still the ones shown.
        during = {file_id: await described(http, owner, file_id, 2) for file_id in ids}
        for file_id, body in during.items():
            old, new = body["full_descriptions"]
            assert old == before[file_id]["full_descriptions"][0] and new["model_id"] == llava, body
            assert body["upload_description"] == old["description"], body
            assert body["ai_models"]["description"]["model_id"] == blip, body

        engine = Running(settings)
        try:
            await until_flipped("describe", llava)
        finally:
            await engine.stop()
        for file_id in ids:
            body = await detail(http, owner, file_id)
            new = body["full_descriptions"][1]
            assert body["upload_description"] == new["description"] and body["description_status"] == "completed"
            assert body["ai_models"]["description"] == {"model_id": llava, "revision": new["revision"]}

        code, out, _ = await scopix(settings, "models", "prune", "describe")
        assert code == 0 and f"dropped {blip}: " in out and llava not in out, out
        for file_id in ids:
            body = await detail(http, owner, file_id)
            assert [entry["model_id"] for entry in body["full_descriptions"]] == [llava], body
            assert body["upload_description"] == body["full_descriptions"][0]["description"]
    finally:
        await forget("describe")


async def described(http: httpx.AsyncClient, caller: Caller, file_id: str, count: int, seconds: float = 120) -> dict:
    """The file once it holds `count` descriptions and its describe job has ended."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = await detail(http, caller, file_id)
        job = await jobs.latest_job(uuid.UUID(file_id), "describe")
        if len(body["full_descriptions"] or []) == count and job.status == "completed":
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"{file_id} has not {count} descriptions after {seconds} s: {body}, {job}")
